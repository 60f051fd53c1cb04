/**
 * Turns a strided tensor view over raw storage bytes into a dense RawTensor: the only place that
 * knows element encodings (half, bfloat16, int64 ...) and PyTorch's offset/size/stride rules.
 */
import { elementReader, isFloatDtype } from '../dtypes.js';
import type { RawTensor } from '../raw-tensor.js';
import type { TensorRef } from './torch-globals.js';

/**
 * Copy `ref` out of `storage` (the storage's little-endian bytes) into a contiguous row-major
 * tensor. Two tensors over one storage (tied weights) each get their own copy.
 * @param name the parameter name, for error messages.
 */
export function materializeTensor(name: string, ref: TensorRef, storage: Uint8Array): RawTensor {
  const { dtype } = ref.storage;
  const availableElements = Math.floor(storage.byteLength / dtype.bytes);
  const count = ref.size.reduce((a, b) => a * b, 1);
  if (ref.size.length !== ref.stride.length) {
    throw new Error(`tensor '${name}': size has ${ref.size.length} dims but stride has ${ref.stride.length}`);
  }
  const base = ref.storage.viewOffset + ref.offset;
  // The furthest element the view touches must lie inside the storage.
  let last = base;
  for (let d = 0; d < ref.size.length; d++) last += (ref.size[d] - 1) * ref.stride[d];
  if (count > 0 && last >= availableElements) {
    throw new Error(
      `tensor '${name}': view (offset ${base}, size [${ref.size}], stride [${ref.stride}]) reaches element ${last} ` +
        `but storage '${ref.storage.key}' holds ${availableElements} ${dtype.code} elements: the checkpoint is truncated or corrupt`,
    );
  }

  const isFloat = isFloatDtype(dtype.code);
  const out = isFloat ? new Float32Array(count) : new Int32Array(count);
  const view = new DataView(storage.buffer, storage.byteOffset, storage.byteLength);
  const read = elementReader(dtype.code, view, name);

  const contiguous = isContiguous(ref.size, ref.stride);
  if (contiguous && dtype.code === 'F32') {
    // Fast path for the common case: one byte copy (re-aligned through a fresh buffer).
    // (Buffer#slice would alias the pooled buffer, hence the explicit copy.)
    new Uint8Array(out.buffer).set(storage.subarray(base * 4, (base + count) * 4));
  } else if (contiguous) {
    for (let i = 0; i < count; i++) out[i] = read(base + i);
  } else {
    // Walk the output in row-major order, carrying a multi-index and its storage position.
    const rank = ref.size.length;
    const idx = new Array<number>(rank).fill(0);
    let src = base;
    for (let i = 0; i < count; i++) {
      out[i] = read(src);
      for (let d = rank - 1; d >= 0; d--) {
        idx[d]++;
        src += ref.stride[d];
        if (idx[d] < ref.size[d]) break;
        src -= ref.stride[d] * ref.size[d];
        idx[d] = 0;
      }
    }
  }
  return {
    shape: [...ref.size],
    dtype: isFloat ? 'float32' : 'int32',
    data: out,
    sourceDtype: dtype.code,
  };
}

function isContiguous(size: number[], stride: number[]): boolean {
  let expected = 1;
  for (let d = size.length - 1; d >= 0; d--) {
    if (size[d] !== 1 && stride[d] !== expected) return false;
    expected *= size[d];
  }
  return true;
}
