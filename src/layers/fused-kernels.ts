import * as tf from '@tensorflow/tfjs-core';
import { recordingGradients } from './weight-layout.js';

/**
 * Fused kernels a backend may register (the native addon does; see docs/native-backend.md), by
 * the tfjs kernel name. Layers run one of these instead of their op-by-op path only where
 * {@link canFuse} says so; the op-by-op path stays the reference (and what wasm, cpu and
 * gradient recording use).
 */
export const FUSED = {
  /** `{ x, weight?: [H], residual? }`, `{ epsilon }` → norm(x + residual). */
  rmsNorm: 'TesseraRMSNorm',
  /** `{ x, gamma?: [H], beta?: [H], residual? }`, `{ epsilon }` → norm(x + residual). */
  layerNorm: 'TesseraLayerNorm',
  /** `{ x: [..., in], weight: [out, in], bias?: [out] }`, `{ activation }` → `act(x·Wᵀ + b)`. */
  linear: 'TesseraLinear',
  /** `{ x, gateWeight, upWeight, gateBias?, upBias? }`, `{ activation }` → `act(x·Wgᵀ + bg) * (x·Wuᵀ + bu)`. */
  gatedLinear: 'TesseraGatedLinear',
  /** `{ x, up? }`, `{ activation }` → `act(x)` (times `up`). */
  activation: 'TesseraActivation',
  /** Attention after the q/k/v projections (src/layers/fused-attention.ts). */
  attention: 'TesseraAttention',
  /** The Mamba selective scan (src/layers/fused-scan.ts). */
  selectiveScan: 'TesseraSelectiveScan',
  /** The whole Mamba mixer, or its pre-norm block (src/layers/fused-mamba.ts). */
  mambaMixer: 'TesseraMambaMixer',
} as const;

/** Sizes of a call that a backend's kernel may not support (see {@link declareMaxStateSize}). */
export interface FusedCallSizes {
  /** The Mamba state size N. */
  stateSize?: number;
}

/** `kernel@backend` → the largest state size its implementation there takes. */
const maxStateSizes = new Map<string, number>();

/**
 * Declared by a backend that registers `kernel` with a limit on the state size N (the native scan
 * kernels keep a channel's state in a fixed array). Above it {@link canFuse} says no, so layers
 * take their reference path and give what the other backends give rather than an error.
 */
export function declareMaxStateSize(kernel: string, backendName: string, maxStateSize: number): void {
  maxStateSizes.set(`${kernel}@${backendName}`, maxStateSize);
}

/**
 * Whether `kernel` may run now: the active backend registers it, no gradients are recorded
 * (fused kernels have no gradient; the op-by-op path keeps training exact), and `sizes` are
 * within what the backend's implementation declared it takes.
 */
export function canFuse(kernel: string, sizes: FusedCallSizes = {}): boolean {
  return fusedKernelFits(kernel, sizes) && !recordingGradients();
}

/** Whether the active backend registers `kernel` and its implementation takes `sizes`. */
export function fusedKernelFits(kernel: string, { stateSize }: FusedCallSizes = {}): boolean {
  const backend = tf.getBackend();
  if (tf.getKernel(kernel, backend) === undefined) return false;
  const max = stateSize === undefined ? undefined : maxStateSizes.get(`${kernel}@${backend}`);
  return max === undefined || stateSize! <= max;
}

/** Run a fused kernel with the inputs that are defined (optional ones may be left out). */
export function runFused(kernel: string, inputs: Record<string, tf.Tensor | undefined>, attrs: Record<string, string | number> = {}): tf.Tensor {
  const present: tf.NamedTensorMap = {};
  for (const [name, t] of Object.entries(inputs)) if (t !== undefined) present[name] = t;
  return tf.engine().runKernel(kernel, present, attrs) as tf.Tensor;
}
