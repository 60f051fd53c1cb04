import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';

import type { NativeAddon } from './addon.js';
import { values, type KernelArgs } from './kernel-utils.js';

/** Names of the fused attention kernels (src/layers/fused-attention.ts runs them). */
export const ATTENTION = 'TesseraAttention';
export const ROTARY = 'TesseraRotary';
export const KV_APPEND = 'TesseraKvAppend';

/** How a key/value operand is laid out: as a projection returns it, or as the KV cache keeps it. */
export type AttentionLayout = 'tokens' | 'heads';

const LAYOUTS: readonly AttentionLayout[] = ['tokens', 'heads'];

function fail(kernel: string, message: string): never {
  throw new Error(`${kernel}: ${message}`);
}

function requireFloat32(kernel: string, name: string, t: TensorInfo): void {
  if (t.dtype !== 'float32') fail(kernel, `input '${name}' must be float32, got ${t.dtype}`);
}

function requireShape(kernel: string, name: string, t: TensorInfo, shape: number[]): void {
  if (!tf.util.arraysEqual(t.shape, shape)) fail(kernel, `input '${name}' must have shape [${shape}], got [${t.shape}]`);
}

function positiveInt(kernel: string, name: string, value: unknown): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) fail(kernel, `attr '${name}' must be a positive integer, got ${String(value)}`);
  return n;
}

/** [B, S, kvHeads·headDim] for 'tokens', [B, kvHeads, S, headDim] for 'heads'; returns S. */
function keyLength(name: string, t: TensorInfo, layout: AttentionLayout, batch: number, kvHeads: number, headDim: number): number {
  const s = layout === 'tokens' ? t.shape[1] : t.shape[2];
  const want = layout === 'tokens' ? [batch, s, kvHeads * headDim] : [batch, kvHeads, s, headDim];
  requireShape(ATTENTION, name, t, want);
  return s;
}

/**
 * Inputs `{ q: [B, Lq, H·D], k, v, mask?: [B, S] (any dtype, 0 = padding) }`, attrs
 * `{ numHeads, numKvHeads, headDim, causal, scale, kLayout, vLayout }` (layouts 'tokens' =
 * [B, S, Hkv·D], 'heads' = [B, Hkv, S, D]); output the context `[B, Lq, H·D]`.
 */
function attentionKernel(addon: NativeAddon): KernelFunc {
  return (({ inputs, backend, attrs = {} }: KernelArgs) => {
    const { q, k, v, mask } = inputs as { q: TensorInfo; k: TensorInfo; v: TensorInfo; mask?: TensorInfo };
    for (const [name, t] of Object.entries({ q, k, v })) requireFloat32(ATTENTION, name, t);
    const heads = positiveInt(ATTENTION, 'numHeads', attrs.numHeads);
    const kvHeads = positiveInt(ATTENTION, 'numKvHeads', attrs.numKvHeads);
    const headDim = positiveInt(ATTENTION, 'headDim', attrs.headDim);
    if (heads % kvHeads !== 0) fail(ATTENTION, `numHeads (${heads}) must be a multiple of numKvHeads (${kvHeads})`);
    const kLayout = attrs.kLayout as AttentionLayout;
    const vLayout = attrs.vLayout as AttentionLayout;
    if (!LAYOUTS.includes(kLayout) || !LAYOUTS.includes(vLayout)) {
      fail(ATTENTION, `kLayout and vLayout must be 'tokens' or 'heads', got '${kLayout}' and '${vLayout}'`);
    }
    if (q.shape.length !== 3) fail(ATTENTION, `q must be [batch, length, numHeads·headDim], got [${q.shape}]`);
    const [batch, qLen] = q.shape;
    requireShape(ATTENTION, 'q', q, [batch, qLen, heads * headDim]);
    const s = keyLength('k', k, kLayout, batch, kvHeads, headDim);
    if (keyLength('v', v, vLayout, batch, kvHeads, headDim) !== s) fail(ATTENTION, 'k and v must hold the same number of keys');
    if (s < 1) fail(ATTENTION, 'k and v must hold at least one key');
    if (qLen > s) fail(ATTENTION, `more queries (${qLen}) than keys (${s})`);
    if (mask !== undefined) requireShape(ATTENTION, 'mask', mask, [batch, s]);
    const out = new Float32Array(batch * qLen * heads * headDim);
    if (out.length > 0) {
      const dims = Int32Array.of(
        batch,
        qLen,
        s,
        heads,
        kvHeads,
        headDim,
        LAYOUTS.indexOf(kLayout),
        LAYOUTS.indexOf(vLayout),
        attrs.causal === true ? 1 : 0,
      );
      addon.attention(
        values(backend, q),
        values(backend, k),
        values(backend, v),
        mask === undefined ? null : values(backend, mask),
        out,
        dims,
        Number(attrs.scale ?? 1 / Math.sqrt(headDim)),
      );
    }
    return backend.makeTensorInfo([batch, qLen, heads * headDim], 'float32', out);
  }) as unknown as KernelFunc;
}

/**
 * Inputs `{ x: [B, L, heads·headDim], cos, sin: [B, L, rotDim] or [B, 1, L, rotDim] }`, attrs
 * `{ headDim }`: rotate-half rotary per head on the first rotDim values; output like x.
 */
function rotaryKernel(addon: NativeAddon): KernelFunc {
  return (({ inputs, backend, attrs = {} }: KernelArgs) => {
    const { x, cos, sin } = inputs as { x: TensorInfo; cos: TensorInfo; sin: TensorInfo };
    for (const [name, t] of Object.entries({ x, cos, sin })) requireFloat32(ROTARY, name, t);
    const headDim = positiveInt(ROTARY, 'headDim', attrs.headDim);
    if (x.shape.length !== 3 || x.shape[2] % headDim !== 0) {
      fail(ROTARY, `x must be [batch, length, heads·${headDim}], got [${x.shape}]`);
    }
    const [batch, len, width] = x.shape;
    const rotDim = cos.shape[cos.shape.length - 1];
    if (rotDim % 2 !== 0 || rotDim > headDim) fail(ROTARY, `rotary dim ${rotDim} must be even and at most headDim ${headDim}`);
    const table = cos.shape.length === 4 ? [batch, 1, len, rotDim] : [batch, len, rotDim];
    requireShape(ROTARY, 'cos', cos, table);
    requireShape(ROTARY, 'sin', sin, table);
    const y = new Float32Array(batch * len * width);
    if (y.length > 0) {
      addon.rotary(values(backend, x), values(backend, cos), values(backend, sin), y, batch, len, width / headDim, headDim, rotDim);
    }
    return backend.makeTensorInfo(x.shape, 'float32', y);
  }) as unknown as KernelFunc;
}

/**
 * Inputs `{ x: [B, L, heads·headDim], past?: [B, heads, S0, headDim] }`, attrs `{ numHeads }`;
 * output `[B, heads, S0 + L, headDim]`: the cache with x appended, in the cache's head-major layout.
 */
function kvAppendKernel(addon: NativeAddon): KernelFunc {
  return (({ inputs, backend, attrs = {} }: KernelArgs) => {
    const { x, past } = inputs as { x: TensorInfo; past?: TensorInfo };
    requireFloat32(KV_APPEND, 'x', x);
    if (past !== undefined) requireFloat32(KV_APPEND, 'past', past);
    const heads = positiveInt(KV_APPEND, 'numHeads', attrs.numHeads);
    if (x.shape.length !== 3 || x.shape[2] % heads !== 0) {
      fail(KV_APPEND, `x must be [batch, length, ${heads}·headDim], got [${x.shape}]`);
    }
    const [batch, len, width] = x.shape;
    const headDim = width / heads;
    const pastLen = past === undefined ? 0 : past.shape[2];
    if (past !== undefined) requireShape(KV_APPEND, 'past', past, [batch, heads, pastLen, headDim]);
    const out = new Float32Array(batch * heads * (pastLen + len) * headDim);
    if (out.length > 0) {
      const pastValues = past === undefined || pastLen === 0 ? null : values(backend, past);
      addon.kvAppend(pastValues, values(backend, x), out, batch, heads, pastValues === null ? 0 : pastLen, len, headDim);
    }
    return backend.makeTensorInfo([batch, heads, pastLen + len, headDim], 'float32', out);
  }) as unknown as KernelFunc;
}

/** The fused attention kernels, for the native backend's registration. */
export function attentionKernels(addon: NativeAddon, backendName: string): KernelConfig[] {
  const kernels: Array<[string, KernelFunc]> = [
    [ATTENTION, attentionKernel(addon)],
    [ROTARY, rotaryKernel(addon)],
    [KV_APPEND, kvAppendKernel(addon)],
  ];
  return kernels.map(([kernelName, kernelFunc]) => ({ kernelName, backendName, kernelFunc }));
}
