import * as tf from '@tensorflow/tfjs-core';
import { declareSequencesOnly, FUSED, scanKernelInputs } from '../contract.js';

/** The slice of the wasm backend's API this kernel needs. */
interface WasmBackendLike {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array;
}

/**
 * `TesseraSelectiveScan` for the wasm backend, in plain JS over the wasm heap. Built from tfjs
 * ops, the chunked scan materialises [L, D, N] several times and pays for strided 4-D slices
 * (on Mamba-130m, 20 of a 512-token prefill's 30 s); one pass with the state in a local array is
 * O(L·D·N) multiply-adds and exps and nothing else (~15 ns an update, most of it Math.exp; a
 * polynomial exp in JS measured slower). A single decode step is faster as the op's own step
 * (~0.8 ms a step for Mamba-130m here), hence `declareSequencesOnly`. Inputs and outputs as the
 * native kernel's (src/kernels/native/kernels.ts): u, delta [B,L,D], A [D,N], B, C [B,L,N], D [D],
 * optional h0 [B,D,N] → y [B,L,D], h [B,D,N].
 */
function selectiveScan({ inputs, backend }: { inputs: tf.NamedTensorInfoMap; backend: unknown }): tf.TensorInfo[] {
  const wasm = backend as WasmBackendLike;
  const { u, delta, A, B, C, D, h0, batch, len, dim, nstate } = scanKernelInputs(FUSED.selectiveScan, inputs);
  const yInfo = wasm.makeOutput([batch, len, dim], 'float32');
  const hInfo = wasm.makeOutput([batch, dim, nstate], 'float32');
  // Views after every allocation: growing the heap detaches earlier ones.
  const [us, ds, as, bs, cs, skip, y, h] = [u, delta, A, B, C, D, yInfo, hInfo].map((t) => wasm.typedArrayFromHeap(t));
  const h0s = h0 === undefined ? undefined : wasm.typedArrayFromHeap(h0);
  // Token-major: each step reads one contiguous row of u, delta, B and C; the state of every
  // channel ([D, N], 96 KB for Mamba-130m) stays in cache.
  for (let b = 0; b < batch; b++) {
    const state = h0s === undefined ? new Float32Array(dim * nstate) : h0s.slice(b * dim * nstate, (b + 1) * dim * nstate);
    for (let t = 0; t < len; t++) {
      const row = b * len + t;
      const bc = row * nstate;
      for (let d = 0; d < dim; d++) {
        const x = row * dim + d;
        const dt = ds![x]!;
        const dtu = dt * us![x]!;
        const at = d * nstate;
        let acc = 0;
        for (let n = 0; n < nstate; n++) {
          const hn = Math.exp(dt * as![at + n]!) * state[at + n]! + dtu * bs![bc + n]!;
          state[at + n] = hn;
          acc += cs![bc + n]! * hn;
        }
        y![x] = acc + skip![d]! * us![x]!;
      }
    }
    h!.set(state, b * dim * nstate);
  }
  return [yInfo, hInfo];
}

/** Register the JS selective scan on the wasm backend (idempotent), for prompts only. */
export function registerWasmScanKernel(): void {
  if (tf.getKernel(FUSED.selectiveScan, 'wasm') === undefined) {
    tf.registerKernel({ kernelName: FUSED.selectiveScan, backendName: 'wasm', kernelFunc: selectiveScan as unknown as tf.KernelFunc });
  }
  declareSequencesOnly(FUSED.selectiveScan, 'wasm');
}
