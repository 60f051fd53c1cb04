import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';

import type { NativeAddon } from './addon.js';
import { allocate, registeredKernel, registeredProjection, scratch, values, type KernelArgs, type ScratchSlot } from './kernel-utils.js';
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
    const { q, k, v, cos, sin, pastKey, pastValue, mask } = inputs as unknown as AttentionInputs;
    requireFloat32(FUSED.attention, { q, k, v, cos, sin, pastKey, pastValue }); // the mask may be any dtype
    const heads = positiveInt('numHeads', attrs.numHeads);
    const kvHeads = positiveInt('numKvHeads', attrs.numKvHeads);
    const headDim = positiveInt('headDim', attrs.headDim);
    const returnCache = attrs.returnCache === true;
    if (heads % kvHeads !== 0) fail(`numHeads (${heads}) must be a multiple of numKvHeads (${kvHeads})`);
    if (q.shape.length !== 3) fail(`q must be [batch, length, numHeads·headDim], got [${q.shape}]`);
    const [batch, len] = q.shape;
    requireShape(FUSED.attention, 'q', q, [batch, len, heads * headDim]);
    requireShape(FUSED.attention, 'k', k, [batch, len, kvHeads * headDim]);
    requireShape(FUSED.attention, 'v', v, [batch, len, kvHeads * headDim]);
    if ((cos === undefined) !== (sin === undefined)) fail('cos and sin come together');
    const rotDim = cos === undefined ? 0 : cos.shape[3];
    if (cos !== undefined && (rotDim % 2 !== 0 || rotDim > headDim)) {
      fail(`rotary dim ${rotDim} must be even and at most headDim ${headDim}`);
    }
    requireShape(FUSED.attention, 'cos', cos, [batch, 1, len, rotDim]);
    requireShape(FUSED.attention, 'sin', sin, [batch, 1, len, rotDim]);
    if ((pastKey === undefined) !== (pastValue === undefined)) fail('pastKey and pastValue come together');
    if (pastKey !== undefined && !returnCache) fail('pastKey/pastValue need returnCache');
    const pastCap = pastKey === undefined ? 0 : pastKey.shape[2];
    const pastLen = attrs.pastLength === undefined ? pastCap : Number(attrs.pastLength);
    if (!Number.isInteger(pastLen) || pastLen < 0 || pastLen > pastCap) {
      fail(`attr 'pastLength' must be an integer in [0, ${pastCap}] (the cached positions), got ${String(attrs.pastLength)}`);
    }
    requireShape(FUSED.attention, 'pastKey', pastKey, [batch, kvHeads, pastCap, headDim]);
    requireShape(FUSED.attention, 'pastValue', pastValue, [batch, kvHeads, pastCap, headDim]);
    const keys = pastLen + len;
    requireShape(FUSED.attention, 'mask', mask, [batch, keys]);

    const rotate = (x: TensorInfo, n: number, slot: ScratchSlot): Float32Array => {
      const xs = values(backend, x);
      if (cos === undefined || xs.length === 0) return xs;
      const y = scratch(slot, xs.length);
      addon.rotary(xs, values(backend, cos), values(backend, sin!), y, batch, len, n, headDim, rotDim);
      return y;
    };
    // Both rotated arrays are consumed below (appended to the cache, or read by attention) before the kernel returns.
    const qs = rotate(q, heads, 'rotatedQ');
    let ks = rotate(k, kvHeads, 'rotatedK');
    let vs = values(backend, v);
    let layout = TOKEN_MAJOR;
    let capacity = keys;
    if (returnCache) {
      const growable = attrs.growable === true;
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
    const context = allocate(backend, batch * len * heads * headDim);
    if (context.length > 0) {
      if (keys === 0) fail('no keys to attend to');
      const dims = Int32Array.of(batch, len, keys, heads, kvHeads, headDim, layout, layout, attrs.causal === true ? 1 : 0, capacity);
      addon.attention(
        qs,
        ks,
        vs,
        mask === undefined ? null : values(backend, mask),
        context,
        dims,
        Number(attrs.scale ?? 1 / Math.sqrt(headDim)),
      );
    }
    const out = backend.makeTensorInfo([batch, len, heads * headDim], 'float32', context);
    if (!returnCache) return out;
    const cacheShape = [batch, kvHeads, capacity, headDim];
    return [out, backend.makeTensorInfo(cacheShape, 'float32', ks), backend.makeTensorInfo(cacheShape, 'float32', vs)];
  }) as unknown as KernelFunc;
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
 * FUSED.attentionProjected as this backend's FUSED.attention and FUSED.linear kernels back to
 * back: their values, one engine dispatch for a pre-norm block's whole attention sublayer.
 */
function attentionProjectedKernel(backendName: string): KernelFunc {
  const kernel = FUSED.attentionProjected;
  return (({ inputs, backend, attrs }: KernelArgs) => {
    const { outWeight, outBias, residual, x, qWeight, kWeight, vWeight, qBias, kBias, vBias, normWeight, ...attentionInputs } = inputs;
    if (outWeight === undefined) throw new Error(`${kernel}: input 'outWeight' is missing`);
    const made = x === undefined ? [] : projections(kernel, backendName, backend, attrs, { x, qWeight, kWeight, vWeight, qBias, kBias, vBias, normWeight }, attentionInputs);
    try {
      if (made.length > 0) [attentionInputs.q, attentionInputs.k, attentionInputs.v] = made;
      const outputs = registeredKernel(kernel, FUSED.attention, backendName)({ inputs: attentionInputs, backend, attrs });
      const [context, ...caches] = Array.isArray(outputs) ? outputs : [outputs];
      try {
        const projected = registeredProjection(kernel, backendName, backend, { x: context!, weight: outWeight, bias: outBias, residual });
        return caches.length === 0 ? projected : [projected, ...caches];
      } catch (error) {
        for (const c of caches) backend.disposeData(c!.dataId);
        throw error;
      } finally {
        backend.disposeData(context!.dataId);
      }
    } finally {
      for (const t of made) backend.disposeData(t.dataId);
    }
  }) as unknown as KernelFunc;
}

/**
 * FUSED.attentionProjected's q, k and v when it is given `x` and their weights: FUSED.linears of
 * x (of RMSNorm(x) with `normWeight`, attr `normEpsilon`), as the projections' own kernel makes them.
 */
function projections(
  kernel: string,
  backendName: string,
  backend: KernelArgs['backend'],
  attrs: KernelArgs['attrs'],
  given: Record<'x' | 'qWeight' | 'kWeight' | 'vWeight' | 'qBias' | 'kBias' | 'vBias' | 'normWeight', TensorInfo | undefined>,
  attentionInputs: Record<string, TensorInfo | undefined>,
): TensorInfo[] {
  const { x, qWeight, kWeight, vWeight, qBias, kBias, vBias, normWeight } = given;
  if (qWeight === undefined || kWeight === undefined || vWeight === undefined) throw new Error(`${kernel}: with input 'x', inputs 'qWeight', 'kWeight' and 'vWeight' are required`);
  if (attentionInputs.q !== undefined || attentionInputs.k !== undefined || attentionInputs.v !== undefined) throw new Error(`${kernel}: give q, k and v, or x and their weights, not both`);
  const inputs: Record<string, TensorInfo> = { x: x!, weight0: qWeight, weight1: kWeight, weight2: vWeight };
  if (qBias !== undefined) inputs.bias0 = qBias;
  if (kBias !== undefined) inputs.bias1 = kBias;
  if (vBias !== undefined) inputs.bias2 = vBias;
  if (normWeight !== undefined) inputs.normWeight = normWeight;
  const normEpsilon = attrs?.normEpsilon;
  return registeredKernel(kernel, FUSED.linears, backendName)({ inputs, backend, attrs: normEpsilon === undefined ? {} : { normEpsilon } }) as TensorInfo[];
}

/** The fused attention kernels and the attention gradient's kernel, for the native backend's registration. */
export function attentionKernels(addon: NativeAddon, backendName: string): KernelConfig[] {
  return [
    { kernelName: FUSED.attention, backendName, kernelFunc: attentionKernel(addon) },
    { kernelName: FUSED.attentionProjected, backendName, kernelFunc: attentionProjectedKernel(backendName) },
    { kernelName: FUSED.attentionBackward, backendName, kernelFunc: attentionBackwardKernel(addon) },
  ];
}
