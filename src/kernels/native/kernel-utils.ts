import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig, KernelFunc, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';

import { BINARY_OPS, type NativeAddon } from './addon.js';

/** The native backend is the cpu backend's class: same storage, so cpu kernels run on it as-is. */
export type Backend = MathBackendCPU;
export type Inputs = Record<string, TensorInfo | undefined>;
export type KernelArgs = { inputs: Inputs; backend: Backend; attrs?: NamedAttrMap };

/** A float32 tensor's values, shared with the backend (never written to). */
export function values(backend: Backend, t: TensorInfo): Float32Array {
  const stored = backend.data.get(t.dataId).values;
  // The cpu Cast kernel turns int32/bool into float32 by relabelling the same data (no copy), so
  // a float32 tensor may be backed by an Int32Array or Uint8Array: convert those.
  return stored instanceof Float32Array ? stored : Float32Array.from(stored as ArrayLike<number>);
}

/**
 * A float32 output buffer that the kernel will overwrite completely: possibly a disposed
 * output's buffer (see NativeBackend.allocate), so its initial contents are arbitrary. `growing`:
 * an output that grows by a little each step (a KV cache), given headroom so buffers fit again.
 */
export function allocate(backend: Backend, length: number, growing = false): Float32Array {
  const pool = backend as Backend & { allocate?: (length: number, growing: boolean) => Float32Array };
  return pool.allocate !== undefined ? pool.allocate(length, growing) : new Float32Array(length);
}

/** Where a kernel keeps a temporary between making it and handing it to the addon (see {@link scratch}). */
export type ScratchSlot = 'normed' | 'rotatedQ' | 'rotatedK' | 'projectedQ' | 'projectedK' | 'projectedV' | 'context' | 'gated';

/**
 * Above this many floats a slot holds its buffer only weakly: a prompt's rows are reused while the
 * garbage collector keeps them, and never held by the slot alone.
 */
export const SCRATCH_MAX_FLOATS = 65536;

const scratchSlots = new Map<ScratchSlot, Float32Array>();
const largeScratchSlots = new Map<ScratchSlot, WeakRef<Float32Array>>();

/**
 * `length` floats of arbitrary content for a temporary that a kernel fills, hands to the addon and
 * drops before it returns (RMSNorm(x) for a projection, rotated q and k): one buffer per slot,
 * reused call after call, so a decode step does not allocate and collect several such arrays per
 * layer. What a slot holds lasts until the slot's next use: a kernel never returns it, keeps it, or
 * runs another kernel that uses the same slot while it still needs it. Lengths above
 * {@link SCRATCH_MAX_FLOATS} (a prompt's q, k, v and context) have a buffer of their own per slot
 * that the slot holds through a WeakRef: every layer of a prefill or an encode reuses it, where a
 * fresh array per layer would fault its pages in and zero them, and the collector may free it
 * between calls, so no slot keeps a prompt's worth of memory alive.
 */
export function scratch(slot: ScratchSlot, length: number): Float32Array {
  const large = length > SCRATCH_MAX_FLOATS;
  let buffer = large ? largeScratchSlots.get(slot)?.deref() : scratchSlots.get(slot);
  if (buffer === undefined || buffer.length < length) {
    if (large) {
      buffer = new Float32Array(length);
      largeScratchSlots.set(slot, new WeakRef(buffer));
    } else {
      buffer = new Float32Array(Math.max(length, buffer === undefined ? 0 : 2 * buffer.length));
      scratchSlots.set(slot, buffer);
    }
  }
  return buffer.length === length ? buffer : buffer.subarray(0, length);
}

/** The cpu backend's own kernel, for dtypes and cases the native path does not cover. */
export function cpuKernel(name: string): (args: KernelArgs) => TensorInfo {
  const config = tf.getKernel(name, 'cpu');
  if (config === undefined) throw new Error(`tfjs cpu kernel '${name}' is not registered`);
  return config.kernelFunc as unknown as (args: KernelArgs) => TensorInfo;
}

/** Row-major element strides of `shape`. */
export function stridesOf(shape: number[]): number[] {
  const strides = new Array<number>(shape.length);
  for (let d = shape.length - 1, s = 1; d >= 0; s *= shape[d], d--) strides[d] = s;
  return strides;
}

/** Strides of an operand of shape `shape` read over the broadcast shape `out` (0 = repeated). */
export function broadcastStrides(shape: number[], out: number[]): number[] {
  const own = stridesOf(shape);
  const offset = out.length - shape.length;
  return out.map((_, d) => (d < offset || shape[d - offset] === 1 ? 0 : own[d - offset]));
}

/** Registrations for `backendName` of `[kernel name, implementation]` pairs. */
export function kernelConfigs(backendName: string, kernels: ReadonlyArray<[string, KernelFunc]>): KernelConfig[] {
  return kernels.map(([kernelName, kernelFunc]) => ({ kernelName, backendName, kernelFunc }));
}

/**
 * `out += residual` (the same shape), after a kernel wrote `out`: the residual connection a fused
 * linear kernel adds to its result, in C, without dispatching a separate Add kernel.
 */
export function addResidual(addon: NativeAddon, backend: Backend, out: Float32Array, residual: TensorInfo | undefined): void {
  if (residual === undefined || out.length === 0) return;
  const unit = Int32Array.of(1);
  addon.binary(BINARY_OPS.indexOf('Add'), out, unit, values(backend, residual), unit, out, Int32Array.of(out.length));
}

/**
 * The rows of `x` a projection kernel multiplies: its values, or with a `normWeight` input
 * ([in], attr `normEpsilon`) their RMSNorm, computed as FUSED.rmsNorm computes it, so a pre-norm
 * block's norm needs no kernel of its own.
 */
export function projectedRows(addon: NativeAddon, backend: Backend, x: TensorInfo, normWeight: TensorInfo | undefined, attrs: NamedAttrMap | undefined): Float32Array {
  const xs = values(backend, x);
  if (normWeight === undefined) return xs;
  const normed = scratch('normed', xs.length);
  if (xs.length > 0) addon.rmsNorm(xs, null, values(backend, normWeight), normed, x.shape[x.shape.length - 1]!, Number(attrs?.normEpsilon ?? 1e-6));
  return normed;
}
