import * as tf from '@tensorflow/tfjs-core';
import { chunkedScan } from './chunked-scan.js';
import type { ScanInputs, ScanOutputs } from './selective-scan.js';
import { FUSED } from '../kernels/contract.js';
import { canFuse, fusedKernelFits } from '../ops/dispatch.js';

/** The fused selective-scan kernel a backend may register (native/src/scan.c on native; src/wasm/scan-kernel.ts on wasm). */
export const SELECTIVE_SCAN_KERNEL = FUSED.selectiveScan;

/**
 * Whether single decode steps should go through the scan kernel too. Not on wasm: its kernel is
 * JS (src/wasm/scan-kernel.ts), which wins on prompts but costs ~0.8 ms a step for Mamba-130m,
 * more than the few vectorised wasm ops of the recurrent step.
 */
export function fusedScanForSteps(stateSize?: number): boolean {
  return fusedKernelFits(SELECTIVE_SCAN_KERNEL, { stateSize }) && tf.getBackend() !== 'wasm';
}

/**
 * The scan Mamba uses by default: the backend's fused kernel where there is one (one pass over
 * the sequence, no [B, L, D, N] intermediates), else the chunked scan of tfjs ops. The kernel
 * has no gradient, so while gradients are recorded the chunked scan runs instead; nor does it
 * run for a state size the backend's kernel does not take (native: above 256).
 */
export function defaultScan(inputs: ScanInputs): ScanOutputs {
  if (!canFuse(SELECTIVE_SCAN_KERNEL, { stateSize: inputs.A.shape[1] })) return chunkedScan(inputs);
  const { u, delta, A, B, C, D, h0 } = inputs;
  const kernelInputs: tf.NamedTensorMap = h0 === undefined ? { u, delta, A, B, C, D } : { u, delta, A, B, C, D, h0 };
  const [y, h] = tf.engine().runKernel(SELECTIVE_SCAN_KERNEL, kernelInputs, {}) as tf.Tensor[];
  return { y: y as tf.Tensor3D, h: h as tf.Tensor3D };
}
