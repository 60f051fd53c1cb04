import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';

import type { NativeAddon } from './addon.js';
import { FUSED, requireFloat32, requirePresent, requireShape } from '../contract.js';
import { allocate, values, type KernelArgs } from './kernel-utils.js';

/** Operand names in the order the addon takes them (binding.c's MambaMixer). */
const OPERANDS = [
  'hidden', 'keep', 'convState', 'ssmState', 'inWeight', 'inBias', 'convWeight', 'convBias', 'xWeight',
  'dtWeight', 'dtBias', 'A', 'D', 'outWeight', 'outBias', 'dtNorm', 'bNorm', 'cNorm', 'preNorm',
] as const;

/**
 * Inputs: hidden [B, L, H]; the mixer's weights in PyTorch layouts (inWeight [2E, H], convWeight
 * [E, 1, K], xWeight [R + 2N, E], dtWeight [E, R], dtBias [E], A [E, N] = -exp(A_log), D [E],
 * outWeight [H, E]; optional inBias, convBias, outBias, and Jamba's dtNorm [R], bNorm [N],
 * cNorm [N] with attr `normEps`); optional convState [B, E, K], ssmState [B, E, N] (zeros when
 * absent) and keep [B, L] (1 = real token, 0 = padding). With preNorm [H] (attr `preNormEps`)
 * the hidden rows are RMS-normalised first, and with attr `addResidual` hidden is added to the
 * output: the pre-norm residual block. Outputs: out [B, L, H], convState, ssmState.
 */
function mambaMixerKernel(addon: NativeAddon): KernelFunc {
  return (({ inputs, backend, attrs }: KernelArgs) => {
    requireFloat32(FUSED.mambaMixer, inputs);
    const { hidden, inWeight, convWeight, xWeight, A } = inputs as Record<string, TensorInfo>;
    if (hidden.shape.length !== 3) throw new Error(`${FUSED.mambaMixer}: hidden must be [batch, length, hidden], got [${hidden.shape}]`);
    const [batch, len, size] = hidden.shape as [number, number, number];
    const inner = inWeight.shape[0]! / 2;
    const [, nstate] = A.shape as [number, number];
    const kernel = convWeight.shape[convWeight.shape.length - 1]!;
    const rank = xWeight.shape[0]! - 2 * nstate;
    const expected: Record<string, number[]> = {
      inWeight: [2 * inner, size], inBias: [2 * inner], convWeight: [inner, 1, kernel], convBias: [inner],
      xWeight: [rank + 2 * nstate, inner], dtWeight: [inner, rank], dtBias: [inner], A: [inner, nstate],
      D: [inner], outWeight: [size, inner], outBias: [size], dtNorm: [rank], bNorm: [nstate], cNorm: [nstate],
      convState: [batch, inner, kernel], ssmState: [batch, inner, nstate], keep: [batch, len], preNorm: [size],
    };
    for (const [name, shape] of Object.entries(expected)) requireShape(FUSED.mambaMixer, name, inputs[name], shape);
    requirePresent(FUSED.mambaMixer, inputs, ['dtWeight', 'dtBias', 'D', 'outWeight']);
    const operands = OPERANDS.map((name) => {
      const t = inputs[name];
      return t === undefined ? null : values(backend, t);
    });
    // The kernel writes every element of its outputs, so they may be reused buffers.
    const out = allocate(backend, batch * len * size);
    const convState = allocate(backend, batch * inner * kernel);
    const ssmState = allocate(backend, batch * inner * nstate);
    const dims = Int32Array.from([batch, len, size, inner, nstate, rank, kernel]);
    if (out.length > 0) {
      const eps = Number(attrs?.normEps ?? 1e-6);
      addon.mambaMixer(dims, operands, [out, convState, ssmState], eps, Number(attrs?.preNormEps ?? 1e-6), Boolean(attrs?.addResidual));
    }
    return [
      backend.makeTensorInfo([batch, len, size], 'float32', out),
      backend.makeTensorInfo([batch, inner, kernel], 'float32', convState),
      backend.makeTensorInfo([batch, inner, nstate], 'float32', ssmState),
    ];
  }) as unknown as KernelFunc;
}

/** The fused Mamba kernel for the native backend. */
export function mambaKernels(addon: NativeAddon, backendName: string): KernelConfig[] {
  return [{ kernelName: FUSED.mambaMixer, backendName, kernelFunc: mambaMixerKernel(addon) }];
}
