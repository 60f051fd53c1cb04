import * as tf from '@tensorflow/tfjs-core';
import { registerWasmAdamKernel } from '../kernels/wasm/adam-kernel.js';
import { registerWasmScanBackwardKernel } from '../kernels/wasm/scan-backward.js';

/** The slice of the wasm backend's API these kernels need. */
interface WasmBackendLike {
  readSync(dataId: object): tf.backend_util.BackendValues;
  makeOutput(shape: number[], dtype: tf.DataType, memoryOffset?: number, values?: tf.backend_util.BackendValues): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array | Int32Array;
}

/**
 * UnsortedSegmentSum for the wasm backend, which lacks it: the gradient of `gather` (every
 * embedding lookup) is a segment sum, so without it nothing with an embedding can train on wasm.
 * out[s, ...] = Σ_{i: ids[i] = s} x[i, ...]; ids outside [0, numSegments) are dropped, as in TF.
 * It is tfjs-wasm's own ScatterNd (C++, adds duplicate indices) with each id as a one-element
 * index; ScatterNd checks no bounds, so ids outside the range take a JS loop instead.
 */
function unsortedSegmentSum({ inputs, attrs, backend }: { inputs: tf.NamedTensorInfoMap; attrs: tf.NamedAttrMap; backend: unknown }): tf.TensorInfo {
  const wasm = backend as WasmBackendLike;
  const x = inputs.x!;
  const segmentIds = inputs.segmentIds!;
  const numSegments = attrs.numSegments as number;
  const ids = wasm.typedArrayFromHeap(segmentIds) as Int32Array;
  const inner = ids.length === 0 ? 0 : tf.util.sizeFromShape(x.shape) / ids.length;
  const shape = [numSegments, ...x.shape.slice(segmentIds.shape.length)];
  if (ids.every((id) => id >= 0 && id < numSegments)) {
    const scatter = tf.getKernel('ScatterNd', 'wasm')!.kernelFunc as unknown as (args: object) => tf.TensorInfo;
    // Views of the inputs with ScatterNd's shapes: the kernel reads only their data and shapes.
    return scatter({
      inputs: { indices: { ...segmentIds, shape: [ids.length, 1] }, updates: { ...x, shape: [ids.length, inner] } },
      attrs: { shape },
      backend,
    });
  }
  const values = wasm.readSync(x.dataId) as Float32Array | Int32Array;
  const out = x.dtype === 'int32' ? new Int32Array(numSegments * inner) : new Float32Array(numSegments * inner);
  for (let i = 0; i < ids.length; i++) {
    const segment = ids[i]!;
    if (segment < 0 || segment >= numSegments) continue;
    for (let j = 0; j < inner; j++) out[segment * inner + j]! += values[i * inner + j]!;
  }
  return wasm.makeOutput(shape, x.dtype, undefined, out);
}

/**
 * Register the kernels training needs on the wasm backend (idempotent): UnsortedSegmentSum, which
 * tfjs-wasm lacks; Tessera's one-pass Adam, which replaces the optimiser's ten kernels per weight;
 * and the scan's backward kernel, which lets Mamba train with the one-pass wasm scan.
 */
export function registerWasmTrainingKernels(): void {
  if (tf.getKernel('UnsortedSegmentSum', 'wasm') === undefined) {
    tf.registerKernel({ kernelName: 'UnsortedSegmentSum', backendName: 'wasm', kernelFunc: unsortedSegmentSum as unknown as tf.KernelFunc });
  }
  registerWasmAdamKernel();
  registerWasmScanBackwardKernel();
}
