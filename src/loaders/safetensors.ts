import { readFile, writeFile } from 'node:fs/promises';
import { parseSafetensors, serializeSafetensors, type TensorToSave } from './safetensors-format.js';
import type { TensorMap } from './raw-tensor.js';

export { MAX_SAFETENSORS_HEADER_BYTES, parseSafetensors, serializeSafetensors, type TensorToSave } from './safetensors-format.js';

/**
 * Read a `.safetensors` file: 8-byte little-endian header length, a JSON header, then raw
 * little-endian data. The whole header is validated, as the reference Rust crate does, before any
 * tensor is decoded (see {@link parseSafetensors}); half floats are widened to float32.
 */
export async function readSafetensors(path: string): Promise<TensorMap> {
  const bytes = await readFile(path);
  return parseSafetensors(bytes, path);
}

/** Write tensors to a `.safetensors` file. */
export async function writeSafetensors(path: string, tensors: Map<string, TensorToSave>, metadata?: Record<string, string>): Promise<void> {
  await writeFile(path, serializeSafetensors(tensors, metadata));
}
