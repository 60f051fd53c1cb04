import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';

import { FFN_ACTIVATIONS, type NativeAddon } from './addon.js';
import { addResidual, allocate, kernelConfigs, values, type KernelArgs } from './kernel-utils.js';
import { FUSED, requireFloat32, requireShape } from '../contract.js';

/** The native number of an `activation` attr, with a clear error for names the kernels lack. */
export function activationCode(kernel: string, attrs: KernelArgs['attrs']): number {
  const name = String(attrs?.activation ?? 'linear');
  const code = (FFN_ACTIVATIONS as readonly string[]).indexOf(name);
  if (code < 0) throw new Error(`${kernel}: unknown activation '${name}'; supported: ${FFN_ACTIVATIONS.join(', ')}`);
  return code;
}

/** `[out, in]` weight that fits `x [..., in]`; returns `out`. */
export function outFeatures(kernel: string, name: string, x: TensorInfo, weight: TensorInfo): number {
  const inF = x.shape[x.shape.length - 1];
  if (x.shape.length < 1 || weight.shape.length !== 2 || weight.shape[1] !== inF) {
    throw new Error(`${kernel}: ${name} must be [out, ${inF}] for x [${x.shape}], got [${weight.shape}]`);
  }
  return weight.shape[0];
}

/**
 * Inputs `{ x: [..., in], weight: [out, in], bias?: [out], residual?: [..., out] }`, attrs
 * `{ activation = 'linear' }` (one of FFN_ACTIVATIONS); output `act(x · weightᵀ + bias) + residual`,
 * `[..., out]`: a Linear layer, with an activation the up-projection of an MLP, with a residual
 * the last projection of a pre-norm block, in one kernel (no reshapes, no bias or residual add).
 */
function linearKernel(addon: NativeAddon): KernelFunc {
  return (({ inputs, backend, attrs }: KernelArgs) => {
    const { x, weight, bias, residual } = inputs as { x: TensorInfo; weight: TensorInfo; bias?: TensorInfo; residual?: TensorInfo };
    requireFloat32(FUSED.linear, inputs);
    const act = activationCode(FUSED.linear, attrs);
    const n = outFeatures(FUSED.linear, 'weight', x, weight);
    requireShape(FUSED.linear, 'bias', bias, [n]);
    const shape = [...x.shape.slice(0, -1), n];
    requireShape(FUSED.linear, 'residual', residual, shape);
    const out = allocate(backend, tf.util.sizeFromShape(shape));
    if (out.length > 0) {
      const b = bias === undefined ? null : values(backend, bias);
      addon.ffnLinear(values(backend, x), values(backend, weight), b, out, x.shape[x.shape.length - 1], n, act);
      addResidual(addon, backend, out, residual);
    }
    return backend.makeTensorInfo(shape, 'float32', out);
  }) as unknown as KernelFunc;
}

/** FUSED.gatedLinear's inputs. */
export type GatedLinearInputs = Record<'x' | 'gateWeight' | 'upWeight', TensorInfo> & { gateBias?: TensorInfo; upBias?: TensorInfo; normWeight?: TensorInfo };

/** FUSED.gatedLinear's checks of its inputs and attrs: the activation's code, the width `n` and shape of its output. */
export function gatedLinearChecks(inputs: KernelArgs['inputs'], attrs: KernelArgs['attrs']): { act: number; n: number; shape: number[] } {
  const { x, gateWeight, upWeight, gateBias, upBias, normWeight } = inputs as GatedLinearInputs;
  requireFloat32(FUSED.gatedLinear, inputs);
  requireShape(FUSED.gatedLinear, 'normWeight', normWeight, [x.shape[x.shape.length - 1]!]);
  const act = activationCode(FUSED.gatedLinear, attrs);
  const n = outFeatures(FUSED.gatedLinear, 'gateWeight', x, gateWeight);
  requireShape(FUSED.gatedLinear, 'upWeight', upWeight, gateWeight.shape);
  requireShape(FUSED.gatedLinear, 'gateBias', gateBias, [n]);
  requireShape(FUSED.gatedLinear, 'upBias', upBias, [n]);
  return { act, n, shape: [...x.shape.slice(0, -1), n] };
}

/** Inputs `{ x, up? }` (up shaped like x), attrs `{ activation }`; output `act(x)`, times `up` when given. */
function activationKernel(addon: NativeAddon): KernelFunc {
  return (({ inputs, backend, attrs }: KernelArgs) => {
    const { x, up } = inputs as { x: TensorInfo; up?: TensorInfo };
    requireFloat32(FUSED.activation, inputs);
    const act = activationCode(FUSED.activation, attrs);
    requireShape(FUSED.activation, 'up', up, x.shape);
    const out = allocate(backend, tf.util.sizeFromShape(x.shape));
    if (out.length > 0) addon.ffnActivation(act, values(backend, x), up === undefined ? null : values(backend, up), out);
    return backend.makeTensorInfo(x.shape, 'float32', out);
  }) as unknown as KernelFunc;
}

/** The feed-forward kernels of the native backend. */
export function ffnKernels(addon: NativeAddon, backendName: string): KernelConfig[] {
  return kernelConfigs(backendName, [
    [FUSED.linear, linearKernel(addon)],
    [FUSED.activation, activationKernel(addon)],
  ]);
}
