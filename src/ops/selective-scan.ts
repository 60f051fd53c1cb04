import * as tf from '@tensorflow/tfjs-core';
import { FUSED } from '../kernels/contract.js';
import { chunkedScan } from './chunked-scan.js';
import { canFuse } from './dispatch.js';
import { scanStep, type ScanInputs, type ScanOutputs } from './scan-reference.js';

/**
 * The selective scan h_t = exp(delta_t A) ⊙ h_{t-1} + delta_t B_t u_t, y_t = C_t · h_t + D u_t,
 * as Mamba runs it by default. The backend's kernel runs where it may (registered, the state size
 * and length within what the backend declared, no gradient being recorded: it has none): one pass
 * over the sequence, no [B, L, D, N] intermediates. Otherwise the reference math: one
 * {@link scanStep} for a single token, the {@link chunkedScan} for a sequence.
 */
export function selectiveScan(inputs: ScanInputs): ScanOutputs {
  const { u, delta, A, B, C, D, h0 } = inputs;
  const length = u.shape[1];
  if (!canFuse(FUSED.selectiveScan, { stateSize: A.shape[1], length })) return length === 1 ? scanStep(inputs) : chunkedScan(inputs);
  const kernelInputs: tf.NamedTensorMap = h0 === undefined ? { u, delta, A, B, C, D } : { u, delta, A, B, C, D, h0 };
  const [y, h] = tf.engine().runKernel(FUSED.selectiveScan, kernelInputs, {}) as tf.Tensor[];
  return { y: y as tf.Tensor3D, h: h as tf.Tensor3D };
}
