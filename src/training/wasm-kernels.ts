import * as tf from '@tensorflow/tfjs-core';

/** The slice of the wasm backend's API a JS kernel needs. */
interface WasmBackendLike {
  readSync(dataId: object): tf.backend_util.BackendValues;
  makeOutput(shape: number[], dtype: tf.DataType, memoryOffset?: number, values?: tf.backend_util.BackendValues): tf.TensorInfo;
}

/**
 * UnsortedSegmentSum for the wasm backend, which lacks it: the gradient of `gather` (every
 * embedding lookup) is a segment sum, so without it nothing with an embedding can train on wasm.
 * out[s, ...] = Σ_{i: ids[i] = s} x[i, ...]; ids outside [0, numSegments) are dropped, as in TF.
 */
function unsortedSegmentSum({ inputs, attrs, backend }: { inputs: tf.NamedTensorInfoMap; attrs: tf.NamedAttrMap; backend: unknown }): tf.TensorInfo {
  const wasm = backend as WasmBackendLike;
  const x = inputs.x!;
  const segmentIds = inputs.segmentIds!;
  const numSegments = attrs.numSegments as number;
  const values = wasm.readSync(x.dataId) as Float32Array | Int32Array;
  const ids = wasm.readSync(segmentIds.dataId) as Int32Array;
  const inner = ids.length === 0 ? 0 : values.length / ids.length;
  const out = x.dtype === 'int32' ? new Int32Array(numSegments * inner) : new Float32Array(numSegments * inner);
  for (let i = 0; i < ids.length; i++) {
    const segment = ids[i]!;
    if (segment < 0 || segment >= numSegments) continue;
    for (let j = 0; j < inner; j++) out[segment * inner + j]! += values[i * inner + j]!;
  }
  return wasm.makeOutput([numSegments, ...x.shape.slice(segmentIds.shape.length)], x.dtype, undefined, out);
}

/** Register JS fallbacks for kernels that training needs and the wasm backend lacks (idempotent). */
export function registerWasmTrainingKernels(): void {
  if (tf.getKernel('UnsortedSegmentSum', 'wasm') === undefined) {
    tf.registerKernel({ kernelName: 'UnsortedSegmentSum', backendName: 'wasm', kernelFunc: unsortedSegmentSum as unknown as tf.KernelFunc });
  }
}
