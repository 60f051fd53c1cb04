/**
 * Turns a strided tensor view over raw storage bytes into a dense RawTensor: the only place that
 * knows element encodings (half, bfloat16, int64 ...) and PyTorch's offset/size/stride rules.
 */
import { elementCount, elementReader, isFloatDtype } from '../dtypes.js';
import { MAX_TENSOR_ELEMENTS } from '../../util/limits.js';
import type { RawTensor } from '../raw-tensor.js';
import type { TensorRef } from './torch-globals.js';

/**
 * Copy `ref` out of `storage` (the storage's little-endian bytes) into a contiguous row-major
 * tensor. Two tensors over one storage (tied weights) each get their own copy.
 * @param name the parameter name, for error messages.
 * @param source the file, for error messages.
 */
export function materializeTensor(name: string, ref: TensorRef, storage: Uint8Array, source: string): RawTensor {
  const { dtype } = ref.storage;
  const where = `${source}: tensor '${name}'`;
  if (ref.size.length !== ref.stride.length) {
    throw new Error(`${where}: size has ${ref.size.length} dims but stride has ${ref.stride.length}`);
  }
  const count = elementCount(ref.size);
  if (count === undefined || !ref.stride.every((s) => Number.isSafeInteger(s) && s >= 0) || !Number.isSafeInteger(ref.offset) || ref.offset < 0) {
    throw new Error(`${where}: size [${ref.size}], stride [${ref.stride}] and offset ${ref.offset} must be non-negative integers of safe size`);
  }
  // The elements the view may touch: the legacy view's window, else the whole storage, and never
  // more than the bytes actually present.
  const viewStart = ref.storage.viewOffset;
  const storageElements = Math.min(ref.storage.numel, Math.floor(storage.byteLength / dtype.bytes));
  const windowEnd = ref.storage.viewSize === undefined ? storageElements : Math.min(storageElements, viewStart + ref.storage.viewSize);
  const available = Math.max(0, windowEnd - viewStart);
  // A view with more elements than its storage repeats elements (stride 0 or overlapping
  // strides): torch.save writes such expanded tensors, but no saved model parameter is one, and
  // materialising it would turn a tiny file into an arbitrarily large allocation.
  if (count > available) {
    throw new Error(
      `${where}: view size [${ref.size}], stride [${ref.stride}] has ${count} elements but its storage '${ref.storage.key}' holds ${available}: ` +
        'an expanded (stride-0 or overlapping) view, which checkpoints of model parameters never contain; the file is corrupt or crafted',
    );
  }
  if (count > MAX_TENSOR_ELEMENTS) throw new Error(`${where}: ${count} elements exceed the ${MAX_TENSOR_ELEMENTS} one tensor can hold`);
  const base = viewStart + ref.offset;
  // The furthest element the view touches must lie inside the window.
  let last = base;
  for (let d = 0; d < ref.size.length; d++) last += (ref.size[d] - 1) * ref.stride[d];
  if (count > 0 && (!Number.isSafeInteger(last) || last >= windowEnd)) {
    throw new Error(
      `${where}: view (offset ${base}, size [${ref.size}], stride [${ref.stride}]) reaches element ${last} ` +
        `but storage '${ref.storage.key}' holds ${windowEnd} ${dtype.code} elements: the checkpoint is truncated or corrupt`,
    );
  }

  const isFloat = isFloatDtype(dtype.code);
  const out = isFloat ? new Float32Array(count) : new Int32Array(count);
  const view = new DataView(storage.buffer, storage.byteOffset, storage.byteLength);
  const read = elementReader(dtype.code, view, where);

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
