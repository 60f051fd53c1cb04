import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';

import { ACTIVATIONS, type NativeAddon } from './addon.js';
import { FUSED, requireFloat32, requireShape, scanKernelInputs } from '../contract.js';
import { allocate, broadcastStrides, cpuKernel, kernelConfigs, values, type Backend, type Inputs, type KernelArgs } from './kernel-utils.js';

/**
 * The largest state size N the native scan kernels take (`MAX_STATE` in native/src/scan.c: a
 * channel's state lives in a fixed array). Declared for both scan kernels at registration, so the
 * layers run their reference path above it; the kernels still refuse it if called directly.
 */
export const NATIVE_MAX_STATE_SIZE = 256;

/**
 * For every batch of the broadcast output batch shape `out`, the flat batch index into an operand
 * whose batch dims are `src` (numpy rules: missing leading dims and dims of size 1 repeat).
 */
function batchIndices(src: number[], out: number[]): Int32Array {
  const strides = broadcastStrides(src, out);
  const idx = new Int32Array(tf.util.sizeFromShape(out));
  for (let i = 0; i < idx.length; i++) {
    let rest = i;
    for (let d = out.length - 1; d >= 0; d--) {
      idx[i] += (rest % out[d]) * strides[d];
      rest = Math.floor(rest / out[d]);
    }
  }
  return idx;
}

/** What the native GEMM applies to its result in place: `act(x + bias)`. */
interface Epilogue {
  bias: Float32Array | null;
  activation: number;
  alpha: number;
  prelu: Float32Array | null;
}

const PLAIN: Epilogue = { bias: null, activation: 0, alpha: 0, prelu: null };

/**
 * float32 batched matmul through BLAS with tfjs' BatchMatMul shape rules: the last two dims are
 * the matrices, the leading ones broadcast against each other.
 */
function matMul(
  addon: NativeAddon,
  backend: Backend,
  a: TensorInfo,
  b: TensorInfo,
  transposeA: boolean,
  transposeB: boolean,
  epilogue: Epilogue,
): TensorInfo {
  const ra = a.shape.length;
  const rb = b.shape.length;
  const k = transposeA ? a.shape[ra - 2] : a.shape[ra - 1];
  const kb = transposeB ? b.shape[rb - 1] : b.shape[rb - 2];
  const m = transposeA ? a.shape[ra - 1] : a.shape[ra - 2];
  const n = transposeB ? b.shape[rb - 2] : b.shape[rb - 1];
  tf.util.assert(
    k === kb,
    () =>
      `Error in matMul: inner shapes (${k}) and (${kb}) of Tensors with shapes ${a.shape} and ` +
      `${b.shape} and transposeA=${transposeA} and transposeB=${transposeB} must match.`,
  );
  const outerA = a.shape.slice(0, -2);
  const outerB = b.shape.slice(0, -2);
  const outer = tf.broadcast_util.assertAndGetBroadcastShape(outerA, outerB);
  const batch = tf.util.sizeFromShape(outer);
  let aIdx = batchIndices(outerA, outer);
  let bIdx = batchIndices(outerB, outer);
  let rows = m;
  // [batch, m, k] x [k, n] is one [batch*m, k] x [k, n] GEMM: bigger calls use BLAS better.
  if (!transposeA && batch > 1 && bIdx.every((v) => v === 0) && aIdx.every((v, i) => v === i)) {
    rows = m * batch;
    aIdx = new Int32Array(1);
    bIdx = new Int32Array(1);
  }
  const out = allocate(backend, batch * m * n);
  // With setMatmulPrecision('bfloat16'), large products take the bf16 GEMM inside the addon.
  addon.matmul(
    values(backend, a),
    values(backend, b),
    out,
    aIdx,
    bIdx,
    rows,
    n,
    k,
    transposeA,
    transposeB,
    epilogue.bias,
    epilogue.activation,
    epilogue.alpha,
    epilogue.prelu,
  );
  return backend.makeTensorInfo([...outer, m, n], 'float32', out);
}

function batchMatMulKernel(addon: NativeAddon): KernelFunc {
  const cpu = cpuKernel(tf.BatchMatMul);
  return (({ inputs, backend, attrs }: KernelArgs) => {
    const { a, b } = inputs as { a: TensorInfo; b: TensorInfo };
    if (a.dtype !== 'float32' || b.dtype !== 'float32') return cpu({ inputs, backend, attrs });
    const { transposeA, transposeB } = attrs as unknown as tf.BatchMatMulAttrs;
    return matMul(addon, backend, a, b, transposeA, transposeB, PLAIN);
  }) as unknown as KernelFunc;
}

/**
 * A bias or prelu weight the GEMM epilogue can apply: float32 with one value, or one value per
 * output column (shape [..1, n]). Undefined for anything that needs general broadcasting.
 */
function rowOperand(backend: Backend, t: TensorInfo | undefined, n: number): Float32Array | null | undefined {
  if (t === undefined) return null;
  const size = tf.util.sizeFromShape(t.shape);
  const isRow = size === n && t.shape[t.shape.length - 1] === n;
  return t.dtype === 'float32' && (size === 1 || isRow) ? values(backend, t) : undefined;
}

/** tfjs kernels that apply each fused activation on their own (for the general epilogue). */
const ACTIVATION_KERNELS: Record<string, string> = {
  relu: tf.Relu,
  elu: tf.Elu,
  relu6: tf.Relu6,
  prelu: tf.Prelu,
  leakyrelu: tf.LeakyRelu,
  sigmoid: tf.Sigmoid,
};

function fusedMatMulKernel(addon: NativeAddon): KernelFunc {
  const cpu = cpuKernel(tf._FusedMatMul);
  const add = cpuKernel(tf.Add);
  return (({ inputs, backend, attrs }: KernelArgs) => {
    const { a, b, bias, preluActivationWeights } = inputs as tf._FusedMatMulInputs & Inputs;
    const { transposeA, transposeB, activation = 'linear', leakyreluAlpha = 0.2 } =
      attrs as unknown as tf._FusedMatMulAttrs;
    const act = (ACTIVATIONS as readonly string[]).indexOf(activation);
    if (a.dtype !== 'float32' || b.dtype !== 'float32' || act < 0) {
      return cpu({ inputs, backend, attrs });
    }
    const n = transposeB ? b.shape[b.shape.length - 2] : b.shape[b.shape.length - 1];
    const biasRow = rowOperand(backend, bias, n);
    const preluRow = rowOperand(backend, preluActivationWeights, n);
    if (biasRow !== undefined && (activation !== 'prelu' || preluRow)) {
      return matMul(addon, backend, a, b, transposeA, transposeB, {
        bias: biasRow,
        activation: act,
        alpha: leakyreluAlpha,
        prelu: preluRow ?? null,
      });
    }
    // Bias or prelu weights that broadcast other than per column: native product, then the
    // cpu backend's own kernels for the epilogue.
    let current = matMul(addon, backend, a, b, transposeA, transposeB, PLAIN);
    const step = (next: TensorInfo): void => {
      backend.disposeIntermediateTensorInfo(current);
      current = next;
    };
    if (bias !== undefined) step(add({ inputs: { a: current, b: bias }, backend }));
    if (activation !== 'linear') {
      const kernel = cpuKernel(ACTIVATION_KERNELS[activation]);
      const actInputs = activation === 'prelu' ? { x: current, alpha: preluActivationWeights } : { x: current };
      step(kernel({ inputs: actInputs, backend, attrs: { alpha: leakyreluAlpha } }));
    }
    return current;
  }) as unknown as KernelFunc;
}

/**
 * A norm kernel's operands: `x` and, for a post-norm block's norm(x + f(x)), `residual` (summed
 * into the output row by row by the addon, in the same pass as the norm), and the output array.
 */
function normOperands(backend: Backend, kernel: string, x: TensorInfo, residual: TensorInfo | undefined): { xs: Float32Array; rs: Float32Array | null; out: Float32Array } {
  requireShape(kernel, 'residual', residual, x.shape);
  return { xs: values(backend, x), rs: residual === undefined ? null : values(backend, residual), out: allocate(backend, tf.util.sizeFromShape(x.shape)) };
}

/** Inputs `{ x: [..., H], weight?: [H], residual?: like x }`, attrs `{ epsilon = 1e-6 }`; norm(x + residual), shape of x. */
function rmsNormKernel(addon: NativeAddon): KernelFunc {
  return (({ inputs, backend, attrs }: KernelArgs) => {
    const { x, weight, residual } = inputs as { x: TensorInfo; weight?: TensorInfo; residual?: TensorInfo };
    requireFloat32(FUSED.rmsNorm, inputs);
    const h = x.shape[x.shape.length - 1] ?? 0;
    requireShape(FUSED.rmsNorm, 'weight', weight, [h]);
    const { xs, rs, out } = normOperands(backend, FUSED.rmsNorm, x, residual);
    if (out.length > 0) addon.rmsNorm(xs, rs, weight === undefined ? null : values(backend, weight), out, h, Number(attrs?.epsilon ?? 1e-6));
    return backend.makeTensorInfo(x.shape, 'float32', out);
  }) as unknown as KernelFunc;
}

/** Inputs `{ x: [..., H], gamma?: [H], beta?: [H], residual?: like x }`, attrs `{ epsilon = 1e-5 }`; norm(x + residual), shape of x. */
function layerNormKernel(addon: NativeAddon): KernelFunc {
  return (({ inputs, backend, attrs }: KernelArgs) => {
    const { x, gamma, beta, residual } = inputs as { x: TensorInfo; gamma?: TensorInfo; beta?: TensorInfo; residual?: TensorInfo };
    requireFloat32(FUSED.layerNorm, inputs);
    const h = x.shape[x.shape.length - 1] ?? 0;
    requireShape(FUSED.layerNorm, 'gamma', gamma, [h]);
    requireShape(FUSED.layerNorm, 'beta', beta, [h]);
    const { xs, rs, out } = normOperands(backend, FUSED.layerNorm, x, residual);
    if (out.length > 0) {
      const g = gamma === undefined ? null : values(backend, gamma);
      addon.layerNorm(xs, rs, g, beta === undefined ? null : values(backend, beta), out, h, Number(attrs?.epsilon ?? 1e-5));
    }
    return backend.makeTensorInfo(x.shape, 'float32', out);
  }) as unknown as KernelFunc;
}

/**
 * Inputs `{ u: [B,L,D], delta: [B,L,D], A: [D,N], B: [B,L,N], C: [B,L,N], D: [D], h0?: [B,D,N] }`,
 * no attrs; outputs `[y: [B,L,D], h: [B,D,N]]`.
 */
function selectiveScanKernel(addon: NativeAddon): KernelFunc {
  return (({ inputs, backend }: KernelArgs) => {
    const { u, delta, A, B, C, D, h0, batch, len, dim, nstate } = scanKernelInputs(FUSED.selectiveScan, inputs);
    const y = allocate(backend, batch * len * dim);
    const h = allocate(backend, batch * dim * nstate);
    addon.selectiveScan(
      values(backend, u),
      values(backend, delta),
      values(backend, A),
      values(backend, B),
      values(backend, C),
      values(backend, D),
      h0 === undefined ? null : values(backend, h0),
      y,
      h,
      batch,
      len,
      dim,
      nstate,
    );
    return [
      backend.makeTensorInfo([batch, len, dim], 'float32', y),
      backend.makeTensorInfo([batch, dim, nstate], 'float32', h),
    ];
  }) as unknown as KernelFunc;
}

/** The kernels the native backend implements itself, replacing or adding to the cpu ones. */
export function nativeKernels(addon: NativeAddon, backendName: string): KernelConfig[] {
  return kernelConfigs(backendName, [
    [tf.BatchMatMul, batchMatMulKernel(addon)],
    [tf._FusedMatMul, fusedMatMulKernel(addon)],
    [FUSED.rmsNorm, rmsNormKernel(addon)],
    [FUSED.layerNorm, layerNormKernel(addon)],
    [FUSED.selectiveScan, selectiveScanKernel(addon)],
  ]);
}
