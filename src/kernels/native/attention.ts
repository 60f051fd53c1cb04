import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig, KernelFunc, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';

import type { NativeAddon } from './addon.js';
import { outFeatures } from './ffn-kernels.js';
import { addResidual, allocate, projectedRows, scratch, values, type KernelArgs, type ScratchSlot } from './kernel-utils.js';
import { linearsInto } from './quant.js';
import { FUSED, requireFloat32, requireShape } from '../contract.js';

/** Layout codes of the addon's `attention`: 0 = [B, S, Hkv·D] (as projected), 1 = [B, Hkv, S, D] (as cached). */
const TOKEN_MAJOR = 0;
const HEAD_MAJOR = 1;

function fail(message: string, kernel: string = FUSED.attention): never {
  throw new Error(`${kernel}: ${message}`);
}

function positiveInt(name: string, value: unknown, kernel: string = FUSED.attention): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) fail(`attr '${name}' must be a positive integer, got ${String(value)}`, kernel);
  return n;
}

interface AttentionInputs {
  q: TensorInfo;
  k: TensorInfo;
  v: TensorInfo;
  cos?: TensorInfo;
  sin?: TensorInfo;
  pastKey?: TensorInfo;
  pastValue?: TensorInfo;
  mask?: TensorInfo;
}

/**
 * One attention layer's work after the projections, in one tfjs kernel (each kernel costs a
 * dispatch, which dominates decoding):
 *
 * inputs `{ q: [B, L, H·D], k, v: [B, L, Hkv·D], cos?, sin?: [B, 1, L, rotDim], pastKey?,
 * pastValue?: [B, Hkv, C0, D], mask?: [B, S0 + L] (any dtype, 0 = padding) }`, attrs
 * `{ numHeads, numKvHeads, headDim, causal, scale, returnCache, pastLength?, growable? }`.
 *
 * Rotary (rotate half, on the first rotDim values of each head) goes on q and k when cos/sin
 * are given. With `returnCache` the outputs are `[context, key, value]`, key and value being the
 * cache with this call's keys and values appended, head-major; otherwise `[context]`. `context`
 * is `[B, L, H·D]`.
 *
 * A cache may hold spare room: its first `pastLength` (S0, default C0) positions per head are the
 * keys, the rest is capacity. With `growable` the returned cache is `[B, Hkv, C, D]` with C >= S0 + L
 * (geometric growth), and when the past already has room and nothing but the past tensor can see
 * its buffer (NativeBackend.appendInPlace), this call's positions are written into it in place
 * (O(L) instead of O(S0)): the past tensor's own S0 positions never change. Without `growable` it
 * is exactly `[B, Hkv, S0 + L, D]`.
 */
function attentionKernel(addon: NativeAddon): KernelFunc {
  return (({ inputs, backend, attrs = {} }: KernelArgs) => {
    const { q, k, v, ...others } = inputs as unknown as AttentionInputs;
    requireFloat32(FUSED.attention, { q, k, v, cos: others.cos, sin: others.sin, pastKey: others.pastKey, pastValue: others.pastValue }); // the mask may be any dtype
    const plan = attentionPlan({ q: q.shape, k: k.shape, v: v.shape }, others, attrs);
    const context = allocate(backend, plan.batch * plan.len * plan.heads * plan.headDim);
    const cache = attendInto(addon, backend, plan, { q: values(backend, q), k: values(backend, k), v: values(backend, v) }, others, context);
    return withCache(backend, plan, backend.makeTensorInfo([plan.batch, plan.len, plan.heads * plan.headDim], 'float32', context), cache);
  }) as unknown as KernelFunc;
}

/** FUSED.attention's inputs besides q, k and v. */
type AttentionOthers = Omit<AttentionInputs, 'q' | 'k' | 'v'>;

/** What FUSED.attention runs, its inputs and attrs checked. */
interface AttentionPlan {
  heads: number;
  kvHeads: number;
  headDim: number;
  batch: number;
  len: number;
  rotDim: number;
  pastCap: number;
  pastLen: number;
  keys: number;
  returnCache: boolean;
  /** A growable cache (attr `growable`): room to grow, appended in place where it may be. */
  growable: boolean;
  causal: boolean;
  scale: number;
}

/** FUSED.attention's checks of q, k and v (by shape), the other inputs and the attrs; what to run. */
function attentionPlan(shapes: { q: number[]; k: number[]; v: number[] }, others: AttentionOthers, attrs: NamedAttrMap): AttentionPlan {
  const { cos, sin, pastKey, pastValue, mask } = others;
  const heads = positiveInt('numHeads', attrs.numHeads);
  const kvHeads = positiveInt('numKvHeads', attrs.numKvHeads);
  const headDim = positiveInt('headDim', attrs.headDim);
  const returnCache = attrs.returnCache === true;
  if (heads % kvHeads !== 0) fail(`numHeads (${heads}) must be a multiple of numKvHeads (${kvHeads})`);
  if (shapes.q.length !== 3) fail(`q must be [batch, length, numHeads·headDim], got [${shapes.q}]`);
  const [batch, len] = shapes.q as [number, number];
  requireShapeOf('q', shapes.q, [batch, len, heads * headDim]);
  requireShapeOf('k', shapes.k, [batch, len, kvHeads * headDim]);
  requireShapeOf('v', shapes.v, [batch, len, kvHeads * headDim]);
  if ((cos === undefined) !== (sin === undefined)) fail('cos and sin come together');
  const rotDim = cos === undefined ? 0 : cos.shape[3]!;
  if (cos !== undefined && (rotDim % 2 !== 0 || rotDim > headDim)) {
    fail(`rotary dim ${rotDim} must be even and at most headDim ${headDim}`);
  }
  requireShape(FUSED.attention, 'cos', cos, [batch, 1, len, rotDim]);
  requireShape(FUSED.attention, 'sin', sin, [batch, 1, len, rotDim]);
  if ((pastKey === undefined) !== (pastValue === undefined)) fail('pastKey and pastValue come together');
  if (pastKey !== undefined && !returnCache) fail('pastKey/pastValue need returnCache');
  const pastCap = pastKey === undefined ? 0 : pastKey.shape[2]!;
  const pastLen = attrs.pastLength === undefined ? pastCap : Number(attrs.pastLength);
  if (!Number.isInteger(pastLen) || pastLen < 0 || pastLen > pastCap) {
    fail(`attr 'pastLength' must be an integer in [0, ${pastCap}] (the cached positions), got ${String(attrs.pastLength)}`);
  }
  requireShape(FUSED.attention, 'pastKey', pastKey, [batch, kvHeads, pastCap, headDim]);
  requireShape(FUSED.attention, 'pastValue', pastValue, [batch, kvHeads, pastCap, headDim]);
  const keys = pastLen + len;
  requireShape(FUSED.attention, 'mask', mask, [batch, keys]);
  if (keys === 0 && batch * len * heads * headDim > 0) fail('no keys to attend to');
  const growable = attrs.growable === true;
  const scale = Number(attrs.scale ?? 1 / Math.sqrt(headDim));
  return { heads, kvHeads, headDim, batch, len, rotDim, pastCap, pastLen, keys, returnCache, growable, causal: attrs.causal === true, scale };
}

/** requireShape for an operand known by its shape only. */
function requireShapeOf(name: string, shape: number[], expected: number[]): void {
  requireShape(FUSED.attention, name, { shape } as TensorInfo, expected);
}

/** The KV cache an attention call returns: head-major [B, Hkv, capacity, D] keys and values. */
interface AttentionCache {
  key: Float32Array;
  value: Float32Array;
  capacity: number;
}

/**
 * Rotary on q and k, the cache append and attention of a checked `plan`, the context written into
 * `context` [B, L, H·D]; the cache when the plan returns one. q, k and v are only read.
 */
function attendInto(
  addon: NativeAddon,
  backend: KernelArgs['backend'],
  plan: AttentionPlan,
  qkv: { q: Float32Array; k: Float32Array; v: Float32Array },
  { cos, sin, pastKey, pastValue, mask }: AttentionOthers,
  context: Float32Array,
): AttentionCache | undefined {
  const { batch, len, heads, kvHeads, headDim, rotDim, pastCap, pastLen, keys, growable } = plan;
  const rotate = (xs: Float32Array, n: number, slot: ScratchSlot): Float32Array => {
    if (cos === undefined || xs.length === 0) return xs;
    const y = scratch(slot, xs.length);
    addon.rotary(xs, values(backend, cos), values(backend, sin!), y, batch, len, n, headDim, rotDim);
    return y;
  };
  // Both rotated arrays are consumed below (appended to the cache, or read by attention) before this returns.
  const qs = rotate(qkv.q, heads, 'rotatedQ');
  let ks = rotate(qkv.k, kvHeads, 'rotatedK');
  let vs = qkv.v;
  let layout = TOKEN_MAJOR;
  let capacity = keys;
  if (plan.returnCache) {
    capacity = !growable ? keys : pastCap >= keys ? pastCap : grownCapacity(keys);
    const pool = backend as typeof backend & { appendInPlace?: (dataId: object) => Float32Array | undefined };
    const append = (past: TensorInfo | undefined, x: Float32Array): Float32Array => {
      // In place only into the past's own room, and only when no other tensor can see its buffer.
      const inPlace = growable && past !== undefined && capacity === pastCap ? pool.appendInPlace?.(past.dataId) : undefined;
      if (inPlace !== undefined) {
        if (len > 0) addon.kvAppend(null, x, inPlace, batch, kvHeads, pastLen, len, headDim, pastCap, capacity);
        return inPlace;
      }
      const out = allocate(backend, batch * kvHeads * capacity * headDim, !growable); // exact caches grow a position per token
      const p = past === undefined || pastLen === 0 ? null : values(backend, past);
      if (out.length > 0) addon.kvAppend(p, x, out, batch, kvHeads, p === null ? 0 : pastLen, len, headDim, pastCap, capacity);
      return out;
    };
    ks = append(pastKey, ks);
    vs = append(pastValue, vs);
    layout = HEAD_MAJOR;
  }
  if (context.length > 0) {
    const dims = Int32Array.of(batch, len, keys, heads, kvHeads, headDim, layout, layout, plan.causal ? 1 : 0, capacity);
    addon.attention(qs, ks, vs, mask === undefined ? null : values(backend, mask), context, dims, plan.scale);
  }
  return plan.returnCache ? { key: ks, value: vs, capacity } : undefined;
}

/** `out` alone, or with the cache as tensors: an attention kernel's outputs. */
function withCache(backend: KernelArgs['backend'], plan: AttentionPlan, out: TensorInfo, cache: AttentionCache | undefined): TensorInfo | TensorInfo[] {
  if (cache === undefined) return out;
  const cacheShape = [plan.batch, plan.kvHeads, cache.capacity, plan.headDim];
  return [out, backend.makeTensorInfo(cacheShape, 'float32', cache.key), backend.makeTensorInfo(cacheShape, 'float32', cache.value)];
}

/**
 * The capacity of a growable cache that must hold `positions`: a quarter more (at least 64
 * positions more), so a decode runs ~S/4 tokens in place between copies, and copies cost O(1)
 * amortised per token.
 */
function grownCapacity(positions: number): number {
  return Math.ceil((positions + Math.max(64, positions / 4)) / 64) * 64;
}

/**
 * The gradient of {@link attentionKernel} without rotary tables and cache: inputs `{ q: [B, L, H·D],
 * k, v: [B, L, Hkv·D], mask?: [B, L], dy: like q }`, attrs `{ numHeads, numKvHeads, headDim,
 * causal, scale }`; outputs `[dq, dk, dv]`, shaped like q, k, v.
 */
function attentionBackwardKernel(addon: NativeAddon): KernelFunc {
  return (({ inputs, backend, attrs = {} }: KernelArgs) => {
    const kernel = FUSED.attentionBackward;
    const { q, k, v, mask, dy } = inputs as { q?: TensorInfo; k?: TensorInfo; v?: TensorInfo; mask?: TensorInfo; dy?: TensorInfo };
    if (q === undefined || k === undefined || v === undefined || dy === undefined) fail('inputs q, k, v and dy are required', kernel);
    requireFloat32(kernel, { q, k, v, dy });
    const heads = positiveInt('numHeads', attrs.numHeads, kernel);
    const kvHeads = positiveInt('numKvHeads', attrs.numKvHeads, kernel);
    const headDim = positiveInt('headDim', attrs.headDim, kernel);
    if (heads % kvHeads !== 0) fail(`numHeads (${heads}) must be a multiple of numKvHeads (${kvHeads})`, kernel);
    if (q.shape.length !== 3) fail(`q must be [batch, length, numHeads·headDim], got [${q.shape}]`, kernel);
    const [batch, len] = q.shape;
    requireShape(kernel, 'q', q, [batch, len, heads * headDim]);
    requireShape(kernel, 'dy', dy, q.shape);
    requireShape(kernel, 'k', k, [batch, len, kvHeads * headDim]);
    requireShape(kernel, 'v', v, k.shape);
    requireShape(kernel, 'mask', mask, [batch, len]);
    const [dq, dk, dv] = [q, k, v].map((t) => allocate(backend, t.shape.reduce((a, b) => a * b, 1)));
    if (dq!.length > 0) {
      const dims = Int32Array.of(batch, len, len, heads, kvHeads, headDim, attrs.causal === true ? 1 : 0);
      const m = mask === undefined ? null : values(backend, mask);
      addon.attentionBackward(values(backend, q), values(backend, k), values(backend, v), m, values(backend, dy), dq!, dk!, dv!, dims, Number(attrs.scale ?? 1 / Math.sqrt(headDim)));
    }
    return [backend.makeTensorInfo(q.shape, 'float32', dq!), backend.makeTensorInfo(k.shape, 'float32', dk!), backend.makeTensorInfo(v.shape, 'float32', dv!)];
  }) as unknown as KernelFunc;
}

/**
 * FUSED.attentionProjected: with `x`, the query, key and value projections (FUSED.linears), then
 * FUSED.attention and the output projection (FUSED.linear), each part with its own kernel's checks
 * and values, run back to back on arrays: one engine dispatch for a pre-norm block's whole
 * attention sublayer, with no tensors between the parts (q, k, v and the context live in scratch
 * slots). All checks come before any work, so an error leaves nothing behind.
 */
function attentionProjectedKernel(addon: NativeAddon): KernelFunc {
  const kernel = FUSED.attentionProjected;
  return (({ inputs, backend, attrs = {} }: KernelArgs) => {
    const { outWeight, outBias, residual, x, qWeight, kWeight, vWeight, qBias, kBias, vBias, normWeight, q, k, v, ...others } = inputs as Record<string, TensorInfo | undefined> &
      AttentionOthers;
    if (outWeight === undefined) throw new Error(`${kernel}: input 'outWeight' is missing`);
    let shapes: { q: number[]; k: number[]; v: number[] };
    let projected: { weights: TensorInfo[]; biases: Array<TensorInfo | undefined>; inF: number; rows: number } | undefined;
    if (x === undefined) {
      if (q === undefined || k === undefined || v === undefined) throw new Error(`${kernel}: give q, k and v, or x and their weights`);
      requireFloat32(FUSED.attention, { q, k, v });
      shapes = { q: q.shape, k: k.shape, v: v.shape };
    } else {
      if (qWeight === undefined || kWeight === undefined || vWeight === undefined) throw new Error(`${kernel}: with input 'x', inputs 'qWeight', 'kWeight' and 'vWeight' are required`);
      if (q !== undefined || k !== undefined || v !== undefined) throw new Error(`${kernel}: give q, k and v, or x and their weights, not both`);
      // FUSED.linears' checks, under the input names that kernel gives them.
      const weights = [qWeight, kWeight, vWeight];
      const biases = [qBias, kBias, vBias];
      requireFloat32(FUSED.linears, { x, weight0: qWeight, weight1: kWeight, weight2: vWeight, bias0: qBias, bias1: kBias, bias2: vBias, normWeight });
      const inF = x.shape[x.shape.length - 1]!;
      requireShape(FUSED.linears, 'normWeight', normWeight, [inF]);
      const lead = x.shape.slice(0, -1);
      const [nq, nk, nv] = weights.map((weight, j) => {
        const n = outFeatures(FUSED.linears, `weight${j}`, x, weight);
        requireShape(FUSED.linears, `bias${j}`, biases[j], [n]);
        return n;
      }) as [number, number, number];
      shapes = { q: [...lead, nq], k: [...lead, nk], v: [...lead, nv] };
      projected = { weights, biases, inF, rows: tf.util.sizeFromShape(lead) };
    }
    requireFloat32(FUSED.attention, { cos: others.cos, sin: others.sin, pastKey: others.pastKey, pastValue: others.pastValue }); // the mask may be any dtype
    const plan = attentionPlan(shapes, others, attrs);
    // FUSED.linear's checks of the output projection, on the context [B, L, H·D].
    const contextShape = [plan.batch, plan.len, plan.heads * plan.headDim];
    requireFloat32(FUSED.linear, { weight: outWeight, bias: outBias, residual });
    const n = outFeatures(FUSED.linear, 'weight', { shape: contextShape } as TensorInfo, outWeight);
    requireShape(FUSED.linear, 'bias', outBias, [n]);
    const outShape = [plan.batch, plan.len, n];
    requireShape(FUSED.linear, 'residual', residual, outShape);

    let qkv: { q: Float32Array; k: Float32Array; v: Float32Array };
    if (projected === undefined) {
      qkv = { q: values(backend, q!), k: values(backend, k!), v: values(backend, v!) };
    } else {
      const { weights, biases, inF, rows } = projected;
      qkv = { q: scratch('projectedQ', rows * shapes.q[2]!), k: scratch('projectedK', rows * shapes.k[2]!), v: scratch('projectedV', rows * shapes.v[2]!) };
      if (rows > 0) linearsInto(addon, backend, projectedRows(addon, backend, x!, normWeight, attrs), inF, weights, biases, [qkv.q, qkv.k, qkv.v]);
    }
    const context = scratch('context', tf.util.sizeFromShape(contextShape));
    const cache = attendInto(addon, backend, plan, qkv, others, context);
    const out = allocate(backend, tf.util.sizeFromShape(outShape));
    if (out.length > 0) {
      linearsInto(addon, backend, context, contextShape[2]!, [outWeight], [outBias], [out]);
      addResidual(addon, backend, out, residual);
    }
    return withCache(backend, plan, backend.makeTensorInfo(outShape, 'float32', out), cache);
  }) as unknown as KernelFunc;
}

/** The fused attention kernels and the attention gradient's kernel, for the native backend's registration. */
export function attentionKernels(addon: NativeAddon, backendName: string): KernelConfig[] {
  return [
    { kernelName: FUSED.attention, backendName, kernelFunc: attentionKernel(addon) },
    { kernelName: FUSED.attentionProjected, backendName, kernelFunc: attentionProjectedKernel(addon) },
    { kernelName: FUSED.attentionBackward, backendName, kernelFunc: attentionBackwardKernel(addon) },
  ];
}
