import * as tf from '@tensorflow/tfjs-core';
import { FUSED } from '../kernels/contract.js';
import { chunkedScan } from './chunked-scan.js';
import { canFuse, recordingGradients, runFusedOutputs } from './dispatch.js';
import { scanStep, type ScanInputs, type ScanOutputs } from './scan-reference.js';

/**
 * The selective scan h_t = exp(delta_t A) ⊙ h_{t-1} + delta_t B_t u_t, y_t = C_t · h_t + D u_t,
 * as Mamba runs it by default. The backend's kernel runs where it may (registered, the state size
 * and length within what the backend declared, and while gradients are recorded only where the
 * backend also has the scan's backward kernel, see below): one pass over the sequence, no
 * [B, L, D, N] intermediates. Otherwise the reference math: one {@link scanStep} for a single
 * token, the {@link chunkedScan} for a sequence.
 */
export function selectiveScan(inputs: ScanInputs): ScanOutputs {
  const { u, delta, A, B, C, D, h0 } = inputs;
  const [batch, length, dim] = u.shape;
  if (!canFuse(FUSED.selectiveScan, { stateSize: A.shape[1], length })) return length === 1 ? scanStep(inputs) : chunkedScan(inputs);
  // The gradient saves every input by name, so a missing initial state is recorded as zeros.
  const start = h0 ?? (recordingGradients() ? tf.zeros([batch, dim, A.shape[1]]) : undefined);
  try {
    const [y, h] = runFusedOutputs(FUSED.selectiveScan, { u, delta, A, B, C, D, h0: start });
    return { y: y as tf.Tensor3D, h: h as tf.Tensor3D };
  } finally {
    if (start !== h0) start!.dispose();
  }
}

const SCAN_INPUTS = ['u', 'delta', 'A', 'B', 'C', 'D', 'h0'] as const;

/**
 * The scan kernel's gradient: the backend's backward kernel (a reverse scan), given the saved
 * inputs and the gradients of both outputs (y, and the final state h, zeros when unused).
 * dispatch.ts lets the forward kernel run while recording only where that kernel exists.
 */
tf.registerGradient({
  kernelName: FUSED.selectiveScan,
  inputsToSave: [...SCAN_INPUTS],
  gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
    const [dyOut, dhOut] = dy as tf.Tensor[];
    const named = Object.fromEntries(SCAN_INPUTS.map((name, i) => [name, saved[i]!]));
    // One kernel call gives all seven; made here, not in the per-input callbacks, because tfjs
    // runs each callback in its own tidy, which would dispose the six it did not return.
    const grads = runFusedOutputs(FUSED.selectiveScanBackward, { ...named, dy: dyOut, dh: dhOut });
    return Object.fromEntries(SCAN_INPUTS.map((name, i) => [name, () => grads[i]!]));
  },
});
