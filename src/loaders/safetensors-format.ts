/**
 * The safetensors format: parsing (with every check of the reference crate) and serialising bytes.
 * Browser-safe: safetensors.ts adds reading and writing files in Node.
 */
import { MAX_TENSOR_ELEMENTS } from '../util/limits.js';
import { ELEMENT_BYTES, elementCount, elementReader, f32ToBf16, f32ToF16, isFloatDtype } from './dtypes.js';
import type { RawTensor, TensorMap } from './raw-tensor.js';


/** The reference safetensors crate refuses headers above 100 MB (`HeaderTooLarge`); so does Tessera. */
export const MAX_SAFETENSORS_HEADER_BYTES = 100_000_000;

interface HeaderEntry {
  name: string;
  dtype: string;
  shape: number[];
  begin: number;
  end: number;
  count: number;
}

/**
 * Parse safetensors bytes; `source` names the file in errors. Before anything is decoded the
 * header must be a JSON object (at most {@link MAX_SAFETENSORS_HEADER_BYTES} bytes of UTF-8, with
 * no key given twice in any object) whose entries each have a known `dtype`, a `shape` of
 * non-negative integers and `data_offsets` `[begin, end]` with `end - begin` = elements × width;
 * sorted by offset the tensors must tile the data section exactly, from 0 to its end, with no gap
 * or overlap; `__metadata__`, if present, maps strings to strings. Any violation is an Error
 * naming the file, the tensor and the problem.
 */
export function parseSafetensors(bytes: Uint8Array, source = 'safetensors data'): TensorMap {
  const entries = validateHeader(bytes, source);
  const dataStart = 8 + Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  const tensors: TensorMap = new Map();
  for (const e of entries) {
    tensors.set(e.name, decode(new DataView(bytes.buffer, bytes.byteOffset + dataStart + e.begin, e.end - e.begin), e.dtype, e.shape, e.count, e.name, source));
  }
  return tensors;
}

/** Every check of the header and the layout; returns the entries in header order. */
function validateHeader(bytes: Uint8Array, source: string): HeaderEntry[] {
  if (bytes.byteLength < 8) throw new Error(`${source}: file too short for a safetensors header (${bytes.byteLength} bytes)`);
  const declared = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (declared > BigInt(MAX_SAFETENSORS_HEADER_BYTES)) {
    throw new Error(`${source}: header length ${declared} exceeds the ${MAX_SAFETENSORS_HEADER_BYTES}-byte limit safetensors sets; the file is corrupt or not safetensors`);
  }
  const headerLength = Number(declared);
  if (headerLength > bytes.byteLength - 8) {
    throw new Error(`${source}: header length ${headerLength} points past the end of the file (${bytes.byteLength} bytes); the file is truncated or not safetensors`);
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLength));
  } catch {
    throw new Error(`${source}: header is not valid UTF-8; the file is corrupt or not safetensors`);
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (err) {
    throw new Error(`${source}: header is not valid JSON (${(err as Error).message})`);
  }
  if (!isPlainObject(header)) throw new Error(`${source}: header is ${jsonKind(header)}, not a JSON object of tensors`);
  // JSON.parse keeps the last of two equal keys; a file read differently by another reader
  // (or by a reviewer) must not load here, so any repeated key is an error.
  const duplicate = findDuplicateKey(text);
  if (duplicate !== undefined) throw new Error(`${source}: header ${duplicate}; the file is corrupt or was edited`);

  const dataLength = bytes.byteLength - 8 - headerLength;
  const entries: HeaderEntry[] = [];
  for (const [name, raw] of Object.entries(header)) {
    if (name === '__metadata__') {
      checkMetadata(raw, source);
      continue;
    }
    const where = `${source}: tensor '${name}'`;
    if (!isPlainObject(raw)) throw new Error(`${where}: header entry is ${jsonKind(raw)}, not an object with dtype, shape and data_offsets`);
    const { dtype, shape, data_offsets: offsets } = raw;
    if (typeof dtype !== 'string') throw new Error(`${where}: dtype is ${jsonKind(dtype)}, not a string`);
    const width = Object.hasOwn(ELEMENT_BYTES, dtype) ? ELEMENT_BYTES[dtype] : undefined;
    if (width === undefined) throw new Error(`${where} has unsupported dtype '${dtype}' (supported: ${Object.keys(ELEMENT_BYTES).join(', ')})`);
    if (!Array.isArray(shape)) throw new Error(`${where}: shape is ${jsonKind(shape)}, not an array`);
    if (!shape.every((d) => typeof d === 'number' && Number.isSafeInteger(d) && d >= 0)) {
      throw new Error(`${where}: shape ${JSON.stringify(shape)} must hold non-negative integers`);
    }
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => typeof o === 'number' && Number.isSafeInteger(o) && o >= 0)) {
      throw new Error(`${where}: data_offsets ${JSON.stringify(offsets)} must be two non-negative integers [begin, end]`);
    }
    const [begin, end] = offsets as [number, number];
    if (end < begin) throw new Error(`${where}: data_offsets [${begin}, ${end}] end before they begin`);
    if (end > dataLength) {
      throw new Error(`${where} data [${begin}, ${end}) lies outside the ${dataLength} data bytes; the file is truncated or corrupt`);
    }
    const count = elementCount(shape);
    if (count === undefined || count * width !== end - begin) {
      throw new Error(`${where} has ${end - begin} bytes, but ${dtype}[${shape}] needs ${count === undefined ? 'more than 2^53' : count * width}`);
    }
    if (count > MAX_TENSOR_ELEMENTS) throw new Error(`${where}: ${count} elements exceed the ${MAX_TENSOR_ELEMENTS} one tensor can hold`);
    entries.push({ name, dtype, shape: shape as number[], begin, end, count });
  }
  checkLayout(entries, dataLength, source);
  return entries;
}

/**
 * The reference crate's layout rule: sorted by offsets, each tensor starts where the previous
 * ended, the first at 0 (`InvalidOffset`), and the last ends at the end of the file
 * (`MetadataIncompleteBuffer`). So no two tensors share bytes and no byte is unaccounted for.
 */
function checkLayout(entries: readonly HeaderEntry[], dataLength: number, source: string): void {
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let at = 0;
  for (let i = 0; i < sorted.length; i++) {
    const e = sorted[i]!;
    if (e.begin < at) {
      throw new Error(`${source}: tensor '${e.name}' data [${e.begin}, ${e.end}) overlaps tensor '${sorted[i - 1]!.name}' (which ends at ${at}); the file is corrupt`);
    }
    if (e.begin > at) {
      throw new Error(`${source}: tensor '${e.name}' data starts at ${e.begin}, leaving bytes [${at}, ${e.begin}) that belong to no tensor; the file is corrupt`);
    }
    at = e.end;
  }
  if (at !== dataLength) {
    throw new Error(`${source}: the tensors cover ${at} of the ${dataLength} data bytes; the other ${dataLength - at} belong to no tensor (the file is corrupt or has trailing data)`);
  }
}

function checkMetadata(raw: unknown, source: string): void {
  // serde reads `"__metadata__": null` as no metadata, so it is accepted here too.
  if (raw === null) return;
  if (!isPlainObject(raw)) throw new Error(`${source}: __metadata__ is ${jsonKind(raw)}, not an object of strings`);
  for (const [k, v] of Object.entries(raw)) {
    if (typeof v !== 'string') throw new Error(`${source}: __metadata__ '${k}' is ${jsonKind(v)}, not a string`);
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function jsonKind(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? 'an object' : `a ${typeof v} (${JSON.stringify(v)?.slice(0, 40)})`;
}

/**
 * Scan JSON text (already known to parse) for an object that has one key twice; returns a
 * description of the first such key. Keys are compared after unescaping, as JSON.parse does.
 */
function findDuplicateKey(text: string): string | undefined {
  // One frame per open container: the keys seen (objects) or null (arrays), and its own key.
  const frames: { keys: Set<string> | null; name: string }[] = [];
  let expectKey = false;
  let lastKey = '';
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      let j = i + 1;
      while (text.charCodeAt(j) !== 0x22) j += text.charCodeAt(j) === 0x5c /* \ */ ? 2 : 1;
      if (expectKey) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        const frame = frames[frames.length - 1]!;
        if (frame.keys!.has(key)) {
          return frames.length === 1 ? `names '${key}' twice` : `entry '${frame.name}' has the key '${key}' twice`;
        }
        frame.keys!.add(key);
        lastKey = key;
        expectKey = false;
      }
      i = j;
    } else if (c === 0x7b /* { */) {
      frames.push({ keys: new Set(), name: frames.length === 0 ? '' : frames.length === 1 ? lastKey : `${frames[frames.length - 1]!.name}.${lastKey}` });
      expectKey = true;
    } else if (c === 0x5b /* [ */) {
      frames.push({ keys: null, name: frames[frames.length - 1]?.name ?? '' });
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      frames.pop();
      expectKey = false;
    } else if (c === 0x2c /* , */) {
      expectKey = frames[frames.length - 1]?.keys != null;
    }
  }
  return undefined;
}

function decode(view: DataView, dtype: string, shape: number[], count: number, name: string, source: string): RawTensor {
  const read = elementReader(dtype, view, `${source}: tensor '${name}'`);
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
