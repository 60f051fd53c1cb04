import { loadAddon } from './addon.js';

/** Inputs of {@link selectiveScan}; every array is float32, row-major. */
export interface SelectiveScanArrays {
  /** Input sequence `u`, `[batch, length, dim]`. */
  u: Float32Array;
  /** Step sizes `delta`, `[batch, length, dim]`, already passed through softplus. */
  delta: Float32Array;
  /** State matrix `A` (= -exp(A_log)), `[dim, stateSize]`. */
  A: Float32Array;
  /** Input projection `B`, `[batch, length, stateSize]`. */
  B: Float32Array;
  /** Output projection `C`, `[batch, length, stateSize]`. */
  C: Float32Array;
  /** Skip connection `D`, `[dim]`. */
  D: Float32Array;
  /** Initial state `h0`, `[batch, dim, stateSize]`; zeros when absent. */
  h0?: Float32Array;
  batch: number;
  length: number;
  dim: number;
  stateSize: number;
}

/**
 * Mamba's selective scan (without the z gate) in one native pass:
 * `h_t = exp(delta_t * A) * h_{t-1} + delta_t * B_t * u_t`, `y_t = C_t · h_t + D * u_t`.
 * Returns `y` `[batch, length, dim]` and the final state `h` `[batch, dim, stateSize]`.
 */
export function selectiveScan(x: SelectiveScanArrays): { y: Float32Array; h: Float32Array } {
  const y = new Float32Array(x.batch * x.length * x.dim);
  const h = new Float32Array(x.batch * x.dim * x.stateSize);
  loadAddon().selectiveScan(
    x.u,
    x.delta,
    x.A,
    x.B,
    x.C,
    x.D,
    x.h0 ?? null,
    y,
    h,
    x.batch,
    x.length,
    x.dim,
    x.stateSize,
  );
  return { y, h };
}

/** RMSNorm over rows of `hidden` values: `x / sqrt(mean(x^2) + epsilon) * weight`. */
export function rmsNorm(
  x: Float32Array,
  weight: Float32Array | undefined,
  hidden: number,
  epsilon: number,
): Float32Array {
  const y = new Float32Array(x.length);
  loadAddon().rmsNorm(x, null, weight ?? null, y, hidden, epsilon);
  return y;
}

/** LayerNorm over rows of `hidden` values: `(x - mean) / sqrt(var + epsilon) * gamma + beta`. */
export function layerNorm(
  x: Float32Array,
  gamma: Float32Array | undefined,
  beta: Float32Array | undefined,
  hidden: number,
  epsilon: number,
): Float32Array {
  const y = new Float32Array(x.length);
  loadAddon().layerNorm(x, null, gamma ?? null, beta ?? null, y, hidden, epsilon);
  return y;
}
