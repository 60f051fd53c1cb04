import * as tf from '@tensorflow/tfjs-core';
import { FUSED } from '../contract.js';
import { scanBackwardKernelsJs } from '../scan-backward-js.js';

/** The slice of the wasm backend's API this kernel needs. */
interface WasmBackendLike {
  readSync(dataId: object): tf.backend_util.BackendValues;
  makeOutput(shape: number[], dtype: tf.DataType, memoryOffset?: number, values?: tf.backend_util.BackendValues): tf.TensorInfo;
}

/**
 * `TesseraSelectiveScanBackward` for the wasm backend: the reverse scan in plain JS over a
 * backend's arrays (src/kernels/scan-backward-js.ts), given the two
 * things it asks of a backend: each input's values (copies out of the wasm heap, so growing the
 * heap for the outputs cannot detach them) and outputs made from arrays. With it registered the
 * wasm scan kernel may run while gradients are recorded (`canFuse`), instead of the chunked scan
 * op by op with its [B, L, D, N] intermediates on the tape.
 */
function scanBackward(args: { inputs: tf.NamedTensorInfoMap; attrs: tf.NamedAttrMap; backend: unknown }): tf.TensorInfo[] {
  const wasm = args.backend as WasmBackendLike;
  const asNative = {
    data: { get: (dataId: object) => ({ values: wasm.readSync(dataId) }) },
    makeTensorInfo: (shape: number[], dtype: tf.DataType, values: Float32Array) => wasm.makeOutput(shape, dtype, undefined, values),
  };
  const [config] = scanBackwardKernelsJs('wasm');
  return config!.kernelFunc({ ...args, backend: asNative } as never) as tf.TensorInfo[];
}

/** Register the scan's backward kernel on the wasm backend (idempotent). */
export function registerWasmScanBackwardKernel(): void {
  if (tf.getKernel(FUSED.selectiveScanBackward, 'wasm') === undefined) {
    tf.registerKernel({ kernelName: FUSED.selectiveScanBackward, backendName: 'wasm', kernelFunc: scanBackward as unknown as tf.KernelFunc });
  }
}
