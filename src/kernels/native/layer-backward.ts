import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';

import type { NativeAddon } from './addon.js';
import { activationCode } from './ffn-kernels.js';
import { FUSED, requireFloat32, requirePresent, requireShape } from '../contract.js';
import { allocate, kernelConfigs, values, type KernelArgs } from './kernel-utils.js';

/**
 * The kernels training runs around the layers' fused forward kernels: rotary (both directions),
 * the backward kernels of the activation and norm kernels, and Mamba's causal conv with its
 * gradient (native/src/backward.c). The ops
 * (src/ops/{rotary,activation,norm}.ts) give their fused paths gradients that call these.
 */

/** The dims of a rotary kernel's `x`: head-major [B, H, L, D], or token-major [B, L, H·D] with attr `heads`. */
function rotaryDims(kernel: string, x: TensorInfo, headsAttr: unknown): { batch: number; heads: number; length: number; headDim: number; tokenMajor: boolean } {
  if (x.shape.length === 4) {
    const [batch, heads, length, headDim] = x.shape as [number, number, number, number];
    return { batch, heads, length, headDim, tokenMajor: false };
  }
  const heads = Number(headsAttr);
  if (x.shape.length !== 3 || !Number.isInteger(heads) || heads < 1 || x.shape[2]! % heads !== 0) {
    throw new Error(`${kernel}: x must be [batch, heads, length, headDim], or [batch, length, heads·headDim] with attr heads; got [${x.shape}], heads ${String(headsAttr)}`);
  }
  const [batch, length, width] = x.shape as [number, number, number];
  return { batch, heads, length, headDim: width / heads, tokenMajor: true };
}

/**
 * Inputs `{ x: [B, H, L, headDim] or [B, L, H·headDim], cos, sin: [B or 1, 1, L, rotDim] }`,
 * attrs `{ transpose, heads (token-major only) }`; output like x.
 */
function rotaryKernel(addon: NativeAddon): KernelFunc {
  return (({ inputs, backend, attrs }: KernelArgs) => {
    const kernel = FUSED.rotary;
    requirePresent(kernel, inputs, ['x', 'cos', 'sin']);
    requireFloat32(kernel, inputs);
    const { x, cos, sin } = inputs as Record<'x' | 'cos' | 'sin', TensorInfo>;
    const { batch, heads, length, headDim, tokenMajor } = rotaryDims(kernel, x, attrs?.heads);
    const tableBatch = cos.shape[0] ?? 0;
    const rotDim = cos.shape[3] ?? 0;
    if (cos.shape.length !== 4 || (tableBatch !== 1 && tableBatch !== batch) || cos.shape[1] !== 1 || cos.shape[2] !== length) {
      throw new Error(`${kernel}: cos must be [${batch} or 1, 1, ${length}, rotDim], got [${cos.shape}]`);
    }
    if (rotDim % 2 !== 0 || rotDim > headDim) throw new Error(`${kernel}: rotary dim ${rotDim} must be even and at most headDim ${headDim}`);
    requireShape(kernel, 'sin', sin, cos.shape);
    const y = allocate(backend, tf.util.sizeFromShape(x.shape));
    if (y.length > 0) {
      const transpose = Number(attrs?.transpose ?? 0) === 0 ? 0 : 1;
      addon.rotaryHeads(values(backend, x), values(backend, cos), values(backend, sin), y, batch, heads, length, headDim, rotDim, tableBatch, transpose, tokenMajor ? 1 : 0);
    }
    return backend.makeTensorInfo(x.shape, 'float32', y);
  }) as unknown as KernelFunc;
}

/** Inputs `{ x, up?, dy }` of one shape, attrs `{ activation }`; outputs `[dx]`, or `[dx, dup]` with `up`. */
function activationBackwardKernel(addon: NativeAddon): KernelFunc {
  return (({ inputs, backend, attrs }: KernelArgs) => {
    const kernel = FUSED.activationBackward;
    requirePresent(kernel, inputs, ['x', 'dy']);
    requireFloat32(kernel, inputs);
    const { x, up, dy } = inputs as { x: TensorInfo; up?: TensorInfo; dy: TensorInfo };
    requireShape(kernel, 'up', up, x.shape);
    requireShape(kernel, 'dy', dy, x.shape);
    const act = activationCode(kernel, attrs);
    const size = tf.util.sizeFromShape(x.shape);
    const dx = allocate(backend, size);
    const dup = up === undefined ? null : allocate(backend, size);
    if (size > 0) addon.activationBackward(act, values(backend, x), up === undefined ? null : values(backend, up), values(backend, dy), dx, dup);
    const outputs = [backend.makeTensorInfo(x.shape, 'float32', dx)];
    if (dup !== null) outputs.push(backend.makeTensorInfo(x.shape, 'float32', dup));
    return outputs;
  }) as unknown as KernelFunc;
}

/** The checks both norm backward kernels share; returns the row width h. */
function normBackwardInputs(kernel: string, inputs: KernelArgs['inputs'], weightName: string): number {
  requirePresent(kernel, inputs, ['x', 'dy']);
  requireFloat32(kernel, inputs);
  const { x, residual, dy } = inputs as { x: TensorInfo; residual?: TensorInfo; dy: TensorInfo };
  const h = x.shape[x.shape.length - 1] ?? 0;
  requireShape(kernel, 'residual', residual, x.shape);
  requireShape(kernel, 'dy', dy, x.shape);
  requireShape(kernel, weightName, inputs[weightName], [h]);
  return h;
}

const orNull = (backend: KernelArgs['backend'], t: TensorInfo | undefined): Float32Array | null => (t === undefined ? null : values(backend, t));

/** Inputs `{ x: [..., h], residual?, weight?: [h], dy }`, attrs `{ epsilon }`; outputs `[ds, dweight: [h]]`. */
function rmsNormBackwardKernel(addon: NativeAddon): KernelFunc {
  return (({ inputs, backend, attrs }: KernelArgs) => {
    const h = normBackwardInputs(FUSED.rmsNormBackward, inputs, 'weight');
    const { x, residual, weight, dy } = inputs as Record<'x' | 'dy', TensorInfo> & Record<'residual' | 'weight', TensorInfo | undefined>;
    const ds = allocate(backend, tf.util.sizeFromShape(x.shape));
    const dweight = new Float32Array(h);
    if (ds.length > 0) {
      addon.rmsNormBackward(values(backend, x), orNull(backend, residual), orNull(backend, weight), values(backend, dy), ds, dweight, h, Number(attrs?.epsilon ?? 1e-6));
    }
    return [backend.makeTensorInfo(x.shape, 'float32', ds), backend.makeTensorInfo([h], 'float32', dweight)];
  }) as unknown as KernelFunc;
}

/** Inputs `{ x: [..., h], residual?, gamma?: [h], dy }`, attrs `{ epsilon }`; outputs `[ds, dgamma, dbeta]`. */
function layerNormBackwardKernel(addon: NativeAddon): KernelFunc {
  return (({ inputs, backend, attrs }: KernelArgs) => {
    const h = normBackwardInputs(FUSED.layerNormBackward, inputs, 'gamma');
    const { x, residual, gamma, dy } = inputs as Record<'x' | 'dy', TensorInfo> & Record<'residual' | 'gamma', TensorInfo | undefined>;
    const ds = allocate(backend, tf.util.sizeFromShape(x.shape));
    const dgamma = new Float32Array(h);
    const dbeta = new Float32Array(h);
    if (ds.length > 0) {
      addon.layerNormBackward(values(backend, x), orNull(backend, residual), orNull(backend, gamma), values(backend, dy), ds, dgamma, dbeta, h, Number(attrs?.epsilon ?? 1e-5));
    }
    return [ds, dgamma, dbeta].map((out, i) => backend.makeTensorInfo(i === 0 ? x.shape : [h], 'float32', out));
  }) as unknown as KernelFunc;
}

/** The conv's sizes from `x` [B, L, D] and `weight` [D, 1, K], checked. */
function convDims(kernel: string, x: TensorInfo, weight: TensorInfo): [number, number, number, number] {
  if (x.shape.length !== 3) throw new Error(`${kernel}: x must be [batch, length, channels], got [${x.shape}]`);
  const [batch, length, dim] = x.shape as [number, number, number];
  const taps = weight.shape[2] ?? 0;
  requireShape(kernel, 'weight', weight, [dim, 1, taps]);
  return [batch, length, dim, taps];
}

/** Inputs `{ x: [B, L, D], weight: [D, 1, K], bias?: [D] }`; output y [B, L, D]. */
function causalConvKernel(addon: NativeAddon): KernelFunc {
  return (({ inputs, backend }: KernelArgs) => {
    const kernel = FUSED.causalConv;
    requirePresent(kernel, inputs, ['x', 'weight']);
    requireFloat32(kernel, inputs);
    const { x, weight, bias } = inputs as { x: TensorInfo; weight: TensorInfo; bias?: TensorInfo };
    const [batch, length, dim, taps] = convDims(kernel, x, weight);
    requireShape(kernel, 'bias', bias, [dim]);
    const y = allocate(backend, batch * length * dim);
    if (y.length > 0) addon.causalConv(values(backend, x), values(backend, weight), orNull(backend, bias), y, batch, length, dim, taps);
    return backend.makeTensorInfo(x.shape, 'float32', y);
  }) as unknown as KernelFunc;
}

/** Inputs `{ x, weight, dy }`; outputs `[dx, dweight, dbias]`. */
function causalConvBackwardKernel(addon: NativeAddon): KernelFunc {
  return (({ inputs, backend }: KernelArgs) => {
    const kernel = FUSED.causalConvBackward;
    requirePresent(kernel, inputs, ['x', 'weight', 'dy']);
    requireFloat32(kernel, inputs);
    const { x, weight, dy } = inputs as Record<'x' | 'weight' | 'dy', TensorInfo>;
    const [batch, length, dim, taps] = convDims(kernel, x, weight);
    requireShape(kernel, 'dy', dy, x.shape);
    const dx = allocate(backend, batch * length * dim);
    const dweight = new Float32Array(dim * taps);
    const dbias = new Float32Array(dim);
    if (dx.length > 0) addon.causalConvBackward(values(backend, x), values(backend, weight), values(backend, dy), dx, dweight, dbias, batch, length, dim, taps);
    return [backend.makeTensorInfo(x.shape, 'float32', dx), backend.makeTensorInfo(weight.shape, 'float32', dweight), backend.makeTensorInfo([dim], 'float32', dbias)];
  }) as unknown as KernelFunc;
}

export function layerBackwardKernels(addon: NativeAddon, backendName: string): KernelConfig[] {
  return kernelConfigs(backendName, [
    [FUSED.rotary, rotaryKernel(addon)],
    [FUSED.activationBackward, activationBackwardKernel(addon)],
    [FUSED.rmsNormBackward, rmsNormBackwardKernel(addon)],
    [FUSED.layerNormBackward, layerNormBackwardKernel(addon)],
    [FUSED.causalConv, causalConvKernel(addon)],
    [FUSED.causalConvBackward, causalConvBackwardKernel(addon)],
  ]);
}
