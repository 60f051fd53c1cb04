import { readFile, writeFile } from 'node:fs/promises';
import { ELEMENT_BYTES, elementReader, f32ToBf16, f32ToF16, isFloatDtype } from './dtypes.js';
import type { RawTensor, TensorMap } from './raw-tensor.js';


interface HeaderEntry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

/**
 * Read a `.safetensors` file: 8-byte little-endian header length, a JSON header, then raw
 * little-endian data. Every header entry is validated against the file before any data is read,
 * and half floats are widened to float32.
 */
export async function readSafetensors(path: string): Promise<TensorMap> {
  const bytes = await readFile(path);
  return parseSafetensors(bytes, path);
}

/** Parse safetensors bytes; `source` names the file in errors. */
export function parseSafetensors(bytes: Uint8Array, source = 'safetensors data'): TensorMap {
  if (bytes.byteLength < 8) throw new Error(`${source}: file too short for a safetensors header (${bytes.byteLength} bytes)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = Number(view.getBigUint64(0, true));
  if (headerLength > bytes.byteLength - 8) {
    throw new Error(`${source}: header length ${headerLength} points past the end of the file (${bytes.byteLength} bytes); the file is truncated or not safetensors`);
  }
  let header: Record<string, HeaderEntry | Record<string, string>>;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength)));
  } catch (err) {
    throw new Error(`${source}: header is not valid JSON (${(err as Error).message})`);
  }
  const dataStart = 8 + headerLength;
  const dataLength = bytes.byteLength - dataStart;
  const tensors: TensorMap = new Map();
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const { dtype, shape, data_offsets: offsets } = entry as HeaderEntry;
    const width = ELEMENT_BYTES[dtype];
    if (width === undefined) throw new Error(`${source}: tensor '${name}' has unsupported dtype '${dtype}'`);
    if (!Array.isArray(shape) || !Array.isArray(offsets) || offsets.length !== 2) {
      throw new Error(`${source}: tensor '${name}' has a malformed header entry`);
    }
    const [begin, end] = offsets;
    const count = shape.reduce((a, b) => a * b, 1);
    if (begin < 0 || end > dataLength || end < begin) {
      throw new Error(`${source}: tensor '${name}' data [${begin}, ${end}) lies outside the ${dataLength} data bytes; the file is truncated or corrupt`);
    }
    if (end - begin !== count * width) {
      throw new Error(`${source}: tensor '${name}' has ${end - begin} bytes, but ${dtype}[${shape}] needs ${count * width}`);
    }
    tensors.set(name, decode(new DataView(bytes.buffer, bytes.byteOffset + dataStart + begin, end - begin), dtype, shape, count, name, source));
  }
  return tensors;
}

function decode(view: DataView, dtype: string, shape: number[], count: number, name: string, source: string): RawTensor {
  const read = elementReader(dtype, view, `${name}' in '${source}`);
  const data = isFloatDtype(dtype) ? new Float32Array(count) : new Int32Array(count);
  for (let i = 0; i < count; i++) data[i] = read(i);
  return { shape, dtype: data instanceof Float32Array ? 'float32' : 'int32', data, sourceDtype: dtype };
}

/** A tensor to save; floats are stored as `dtype` (default F32). */
export interface TensorToSave {
  shape: number[];
  data: Float32Array | Int32Array;
  dtype?: 'F32' | 'F16' | 'BF16' | 'I32';
}

/** Serialise tensors as safetensors bytes (header padded to 8 bytes, as the reference writer does). */
export function serializeSafetensors(tensors: Map<string, TensorToSave>, metadata: Record<string, string> = { format: 'pt' }): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: metadata };
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of tensors) {
    const dtype = t.dtype ?? (t.data instanceof Int32Array ? 'I32' : 'F32');
    const chunk = encode(t.data, dtype);
    header[name] = { dtype, shape: t.shape, data_offsets: [offset, offset + chunk.byteLength] };
    chunks.push(chunk);
    offset += chunk.byteLength;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const headerBytes = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + headerBytes.byteLength + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.byteLength), true);
  out.set(headerBytes, 8);
  let at = 8 + headerBytes.byteLength;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

/** Write tensors to a `.safetensors` file. */
export async function writeSafetensors(path: string, tensors: Map<string, TensorToSave>, metadata?: Record<string, string>): Promise<void> {
  await writeFile(path, serializeSafetensors(tensors, metadata));
}

function encode(data: Float32Array | Int32Array, dtype: string): Uint8Array {
  const width = ELEMENT_BYTES[dtype]!;
  const out = new Uint8Array(data.length * width);
  const view = new DataView(out.buffer);
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    if (dtype === 'F32') view.setFloat32(i * 4, v, true);
    else if (dtype === 'I32') view.setInt32(i * 4, v, true);
    else if (dtype === 'F16') view.setUint16(i * 2, f32ToF16(v), true);
    else view.setUint16(i * 2, f32ToBf16(v), true);
  }
  return out;
}
