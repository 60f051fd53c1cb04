import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';

import { FUSED, requireFloat32 } from '../contract.js';
import { BINARY_OPS, UNARY_OPS, type NativeAddon } from './addon.js';
import { allocate, broadcastStrides, cpuKernel, kernelConfigs, stridesOf, values, type Backend, type KernelArgs } from './kernel-utils.js';

/** The addon's strided loops take at most this many (collapsed) dimensions. */
const MAX_RANK = 8;

/**
 * Drop size-1 dimensions and merge neighbours that every operand walks contiguously, so a
 * [1, 128, 3072] + [3072] add becomes one [128, 3072] loop and an elementwise op one flat loop.
 */
function collapse(shape: number[], strides: number[][]): { shape: Int32Array; strides: Int32Array[] } {
  const outShape: number[] = [];
  const outStrides: number[][] = strides.map(() => []);
  for (let d = 0; d < shape.length; d++) {
    if (shape[d] === 1) continue;
    const last = outShape.length - 1;
    if (last >= 0 && strides.every((s, o) => outStrides[o][last] === s[d] * shape[d])) {
      outShape[last] *= shape[d];
      strides.forEach((s, o) => (outStrides[o][last] = s[d]));
    } else {
      outShape.push(shape[d]);
      strides.forEach((s, o) => outStrides[o].push(s[d]));
    }
  }
  return { shape: Int32Array.from(outShape), strides: outStrides.map((s) => Int32Array.from(s)) };
}

function binaryKernel(addon: NativeAddon, name: string, op: number): KernelFunc {
  const cpu = cpuKernel(name);
  return (({ inputs, backend, attrs }: KernelArgs) => {
    const { a, b } = inputs as { a: TensorInfo; b: TensorInfo };
    if (a.dtype !== 'float32' || b.dtype !== 'float32') return cpu({ inputs, backend, attrs });
    const shape = tf.backend_util.assertAndGetBroadcastShape(a.shape, b.shape);
    const view = collapse(shape, [broadcastStrides(a.shape, shape), broadcastStrides(b.shape, shape)]);
    if (view.shape.length > MAX_RANK) return cpu({ inputs, backend, attrs });
    const out = allocate(backend, tf.util.sizeFromShape(shape));
    if (out.length > 0) {
      addon.binary(op, values(backend, a), view.strides[0], values(backend, b), view.strides[1], out, view.shape);
    }
    return backend.makeTensorInfo(shape, 'float32', out);
  }) as unknown as KernelFunc;
}

function unaryKernel(addon: NativeAddon, name: string, op: number): KernelFunc {
  const cpu = cpuKernel(name);
  return (({ inputs, backend, attrs }: KernelArgs) => {
    const { x } = inputs as { x: TensorInfo };
    if (x.dtype !== 'float32') return cpu({ inputs, backend, attrs });
    const xs = values(backend, x);
    const out = allocate(backend, xs.length);
    addon.unary(op, xs, out);
    return backend.makeTensorInfo(x.shape, 'float32', out);
  }) as unknown as KernelFunc;
}

/** tfjs' Softmax kernel: over the last dimension (the only one tf.softmax accepts). */
function softmaxKernel(addon: NativeAddon): KernelFunc {
  const cpu = cpuKernel(tf.Softmax);
  return (({ inputs, backend, attrs }: KernelArgs) => {
    const { logits } = inputs as { logits: TensorInfo };
    const rank = logits.shape.length;
    const dim = Number((attrs as unknown as tf.SoftmaxAttrs).dim);
    const cols = logits.shape[rank - 1] ?? 0;
    if (logits.dtype !== 'float32' || (dim !== -1 && dim !== rank - 1) || cols === 0) {
      return cpu({ inputs, backend, attrs });
    }
    const xs = values(backend, logits);
    const out = allocate(backend, xs.length);
    if (out.length > 0) addon.softmax(xs, out, cols);
    return backend.makeTensorInfo(logits.shape, 'float32', out);
  }) as unknown as KernelFunc;
}

/**
 * Transpose as a strided copy (output dim i walks input dim perm[i]); undefined when the
 * collapsed view still has more dims than the addon takes.
 */
function transposeValues(addon: NativeAddon, backend: Backend, xs: Float32Array, xShape: number[], perm: number[]): Float32Array | undefined {
  const own = stridesOf(xShape);
  const view = collapse(perm.map((p) => xShape[p]), [perm.map((p) => own[p])]);
  if (view.shape.length > MAX_RANK) return undefined;
  const out = allocate(backend, xs.length);
  if (out.length > 0) addon.stridedCopy(xs, view.strides[0], out, view.shape);
  return out;
}

function transposeKernel(addon: NativeAddon): KernelFunc {
  const cpu = cpuKernel(tf.Transpose);
  return (({ inputs, backend, attrs }: KernelArgs) => {
    const { x } = inputs as { x: TensorInfo };
    const { perm } = attrs as unknown as tf.TransposeAttrs;
    // A permutation that moves only dims of size 1 (tfjs' embedding gradient transposes a
    // [vocab, hidden] table by the identity) keeps the element order: share the data, as Reshape does.
    const moved = perm.filter((p) => x.shape[p] !== 1);
    if (x.dtype !== 'complex64' && moved.every((p, i) => i === 0 || p > moved[i - 1]!)) {
      backend.incRef(x.dataId);
      return { dataId: x.dataId, shape: perm.map((p) => x.shape[p]), dtype: x.dtype };
    }
    const out = x.dtype === 'float32' ? transposeValues(addon, backend, values(backend, x), x.shape, perm) : undefined;
    if (out === undefined) return cpu({ inputs, backend, attrs });
    return backend.makeTensorInfo(perm.map((p) => x.shape[p]), 'float32', out);
  }) as unknown as KernelFunc;
}

/**
 * Sum, Mean, Max and Min as the cpu backend does them (reduced axes moved innermost, then one
 * value per row), with the move and the row loop native. `axisAttr` names the kernel's axis attr.
 */
function reduceKernel(addon: NativeAddon, name: string, op: number, axisAttr: string): KernelFunc {
  const cpu = cpuKernel(name);
  return (({ inputs, backend, attrs }: KernelArgs) => {
    const { x } = inputs as { x: TensorInfo };
    if (x.dtype !== 'float32') return cpu({ inputs, backend, attrs });
    const rank = x.shape.length;
    const axes = tf.util.parseAxisParam(attrs?.[axisAttr] as number | number[], x.shape);
    const perm = tf.backend_util.getAxesPermutation(axes, rank);
    let xs: Float32Array | undefined = values(backend, x);
    let shape = x.shape;
    if (perm !== null) {
      xs = transposeValues(addon, backend, xs, x.shape, perm);
      shape = perm.map((p) => x.shape[p]);
    }
    const inner = tf.backend_util.getInnerMostAxes(axes.length, rank);
    const [outShape, reduceShape] = tf.backend_util.computeOutAndReduceShapes(shape, inner);
    const cols = tf.util.sizeFromShape(reduceShape);
    // Empty reductions (identity values, NaN means) stay with the cpu kernel's definitions.
    if (xs === undefined || cols === 0) return cpu({ inputs, backend, attrs });
    const out = new Float32Array(tf.util.sizeFromShape(outShape));
    if (out.length > 0) addon.reduce(op, xs, out, cols);
    const keepDims = Boolean(attrs?.keepDims);
    return backend.makeTensorInfo(keepDims ? tf.backend_util.expandShapeToKeepDim(outShape, axes) : outShape, 'float32', out);
  }) as unknown as KernelFunc;
}

/** FUSED.greedyPick: `{ logits: [..., V] }` → int32 [rows, 2] (src/kernels/contract.ts). */
function greedyPickKernel(addon: NativeAddon): KernelFunc {
  return (({ inputs, backend }: KernelArgs) => {
    const { logits } = inputs as { logits?: TensorInfo };
    if (logits === undefined) throw new Error(`${FUSED.greedyPick}: input 'logits' is missing`);
    requireFloat32(FUSED.greedyPick, { logits });
    const cols = logits.shape[logits.shape.length - 1] ?? 0;
    if (logits.shape.length === 0 || cols === 0) throw new Error(`${FUSED.greedyPick}: logits must be [..., vocabulary] with a vocabulary of at least one token, got [${logits.shape}]`);
    const rows = tf.util.sizeFromShape(logits.shape) / cols;
    const out = new Int32Array(2 * rows);
    if (rows > 0) addon.greedyPick(values(backend as Backend, logits), out, cols);
    return backend.makeTensorInfo([rows, 2], 'int32', out);
  }) as unknown as KernelFunc;
}

/** Native replacements for cpu kernels that dominate transformer inference time on cpu. */
export function elementwiseKernels(addon: NativeAddon, backendName: string): KernelConfig[] {
  return kernelConfigs(backendName, [
    ...BINARY_OPS.map((name, op): [string, KernelFunc] => [name, binaryKernel(addon, name, op)]),
    ...UNARY_OPS.map((name, op): [string, KernelFunc] => [name, unaryKernel(addon, name, op)]),
    [tf.Softmax, softmaxKernel(addon)],
    [tf.Transpose, transposeKernel(addon)],
    [tf.Sum, reduceKernel(addon, tf.Sum, 0, 'axis')],
    [tf.Mean, reduceKernel(addon, tf.Mean, 1, 'axis')],
    [tf.Max, reduceKernel(addon, tf.Max, 2, 'reductionIndices')],
    [tf.Min, reduceKernel(addon, tf.Min, 3, 'axis')],
    [FUSED.greedyPick, greedyPickKernel(addon)],
  ]);
}
