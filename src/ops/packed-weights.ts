import * as tf from '@tensorflow/tfjs-core';
import { FUSED, PACKED_DTYPES, packedStorage, type PackedDtype } from '../kernels/contract.js';
import { recordingGradients } from './dispatch.js';

/**
 * Linear weights in a narrower format (docs/precision.md). On a backend with the
 * `FUSED.packWeight` kernel (native) the weight's storage becomes bfloat16, float16 or int8 and the
 * linear kernels read it directly; elsewhere its values are rounded to the format and kept as
 * float32, so every backend computes with the same weights.
 */

/** The `dtype` load option: how linear weights are held. */
export const WEIGHT_DTYPES = ['float32', ...PACKED_DTYPES] as const;
export type WeightDtype = (typeof WEIGHT_DTYPES)[number];

/** `dtype`, checked: a clear error for anything but a {@link WeightDtype}. */
export function checkWeightDtype(dtype: unknown, where: string): WeightDtype {
  if (typeof dtype === 'string' && (WEIGHT_DTYPES as readonly string[]).includes(dtype)) return dtype as WeightDtype;
  throw new Error(`${where}: unknown dtype ${JSON.stringify(dtype)}; use one of ${WEIGHT_DTYPES.map((d) => `'${d}'`).join(', ')}`);
}

/** Whether the active backend holds packed weights (else {@link packWeight} rounds them in float32). */
export function backendPacksWeights(): boolean {
  return tf.getKernel(FUSED.packWeight, tf.getBackend()) !== undefined;
}

/** `backend:dtype` pairs already warned about (one line each per process). */
const warnedRounded = new Set<string>();

/** Say once per backend and dtype that weights are rounded and kept float32 here, not packed. */
export function warnRoundedOnce(dtype: PackedDtype): void {
  const key = `${tf.getBackend()}:${dtype}`;
  if (warnedRounded.has(key)) return;
  warnedRounded.add(key);
  console.warn(`tessera: dtype '${dtype}' is held packed only on the native backend; here the weights are rounded to ${dtype} and kept as float32`);
}

/**
 * Hold `weight` ([out, in]) as `dtype`: packed where the backend can ({@link backendPacksWeights}),
 * else rounded to the format's values in float32. The variable keeps its shape and path.
 */
export function packWeight(weight: tf.Variable, dtype: PackedDtype): void {
  if (weight.rank !== 2 || weight.dtype !== 'float32') {
    throw new Error(`packWeight: ${weight.name} must be a float32 [out, in] weight, got ${weight.dtype} [${weight.shape}]`);
  }
  if (packedStorage(weight) !== undefined) throw new Error(`packWeight: ${weight.name} is already held as ${packedStorage(weight)!.dtype}`);
  if (backendPacksWeights()) {
    tf.tidy(() => weight.assign(tf.engine().runKernel(FUSED.packWeight, { x: weight }, { dtype }) as tf.Tensor));
  } else {
    const rounded = roundToDtype(weight.dataSync() as Float32Array, weight.shape[0]!, weight.shape[1]!, dtype);
    tf.tidy(() => weight.assign(tf.tensor(rounded, weight.shape, 'float32')));
  }
}

/** The format `t`'s storage holds when packed, else undefined. */
export function packedDtypeOf(t: tf.Tensor): PackedDtype | undefined {
  return packedStorage(t)?.dtype;
}

/** Bytes `t` holds: its packed storage, or its size times its dtype's width. */
export function tensorBytes(t: tf.Tensor): number {
  return packedStorage(t)?.bytes ?? t.size * (t.dtype === 'bool' ? 1 : 4);
}

/**
 * Throw when gradients are being recorded through a packed weight: its storage cannot be
 * differentiated or updated in place, and widening it silently would train a different model.
 */
export function requireUnpackedWhileRecording(weight: tf.Tensor, op: string): void {
  const dtype = packedDtypeOf(weight);
  if (dtype !== undefined && recordingGradients()) {
    throw new Error(
      `${op}: a [${weight.shape}] weight is held as ${dtype} (loaded with { dtype: '${dtype}' }) and cannot be trained or ` +
        `differentiated; load the model with dtype 'float32' to train it`,
    );
  }
}

// ---- the formats' values in float32 (backends without packed storage) ----

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** `x` rounded to bfloat16 (nearest, ties to even), as float32. */
export function roundBfloat16(x: number): number {
  f32[0] = x;
  const u = u32[0]!;
  if ((u & 0x7fffffff) > 0x7f800000) return x; // NaN
  u32[0] = ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) << 16;
  return f32[0]!;
}

/** `x` rounded to IEEE float16 (nearest, ties to even; beyond 65504 it overflows to ±Infinity), as float32. */
export function roundFloat16(x: number): number {
  if (!Number.isFinite(x) || x === 0) return x;
  const a = Math.abs(x);
  // The spacing of float16 values around a: 2^(e - 10) for normal a, 2^-24 below 2^-14.
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--;
  else if (2 ** (e + 1) <= a) e++;
  const ulp = 2 ** (Math.max(e, -14) - 10);
  const q = a / ulp;
  const floor = Math.floor(q);
  const rest = q - floor;
  const r = rest > 0.5 || (rest === 0.5 && floor % 2 === 1) ? floor + 1 : floor;
  const y = r * ulp;
  return Math.sign(x) * (y > 65504 ? Infinity : y);
}

/** Nearest integer, ties to even (as C's nearbyintf, which the native packing uses). */
function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * `w` [rows, cols] as `dtype` would hold it, in float32: bf16/f16 rounding, or int8 with one
 * symmetric scale per row (max |w_row| / 127, values rounded to the nearest step).
 */
export function roundToDtype(w: Float32Array, rows: number, cols: number, dtype: PackedDtype): Float32Array {
  const out = new Float32Array(w.length);
  if (dtype === 'bfloat16') for (let i = 0; i < w.length; i++) out[i] = roundBfloat16(w[i]!);
  else if (dtype === 'float16') for (let i = 0; i < w.length; i++) out[i] = roundFloat16(w[i]!);
  else {
    for (let r = 0; r < rows; r++) {
      let max = 0;
      for (let c = 0; c < cols; c++) max = Math.max(max, Math.abs(w[r * cols + c]!));
      const scale = Math.fround(max / 127);
      const inv = max > 0 ? Math.fround(127 / max) : 0;
      for (let c = 0; c < cols; c++) {
        const q = Math.min(127, Math.max(-127, roundHalfEven(Math.fround(w[r * cols + c]! * inv))));
        out[r * cols + c] = q === 0 ? 0 : q * scale; // int8 has no -0
      }
    }
  }
  return out;
}
