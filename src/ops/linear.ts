import * as tf from '@tensorflow/tfjs-core';
import { FUSED } from '../kernels/contract.js';
import { activation as activationOf, fusedActivationName, gatedActivation } from './activation.js';
import { derivedOf, registerDerived } from './derived-weights.js';
import { canFuse, runFused } from './dispatch.js';
import { norm } from './norm.js';
import { requireUnpackedWhileRecording } from './packed-weights.js';

/** A linear map's weights: `weight [out, in]` (PyTorch layout) and an optional `bias [out]`. */
export interface LinearWeights {
  weight: tf.Tensor;
  bias?: tf.Tensor;
}

/** An RMSNorm (`weight [in]`, `eps`) applied to x before the products: a pre-norm block's norm. */
export interface PreNorm {
  weight: tf.Tensor;
  eps: number;
}

/** The inputs and attrs that hand a fused projection kernel its pre-norm. */
function preNormArgs(preNorm: PreNorm | undefined): { inputs: { normWeight?: tf.Tensor }; attrs: { normEpsilon?: number } } {
  return preNorm === undefined ? { inputs: {}, attrs: {} } : { inputs: { normWeight: preNorm.weight }, attrs: { normEpsilon: preNorm.eps } };
}

/** `x`, through `preNorm` where given (op by op). */
function normed(x: tf.Tensor, preNorm: PreNorm | undefined): tf.Tensor {
  return preNorm === undefined ? x : norm('rmsnorm', x, preNorm.weight, undefined, preNorm.eps);
}

/**
 * Backends whose matmul is many times slower with `transposeB` (measured on tfjs-wasm 4.22; the
 * pure-JS cpu backend is kept with it). BLAS-backed backends read `[out, in]` transposed for free,
 * so they get no copy and the linear weights are held once.
 */
const PREFER_IN_OUT = new Set(['wasm', 'cpu']);

/** Whether the active backend wants linear weights laid out `[in, out]`. */
export function prefersInOutWeights(): boolean {
  return PREFER_IN_OUT.has(tf.getBackend());
}

const transpose = (w: tf.Tensor): tf.Tensor => tf.transpose(w);

/**
 * Let {@link linear} keep `weight` ([out, in]) in the layout the active backend's matmul wants: a
 * cached `[in, out]` copy where `x · Wᵀ` through `transposeB` is 5-25× slower than a plain product
 * (wasm, tfjs 4.22; docs/performance.md), nothing elsewhere. Weights keep PyTorch's layout so that
 * checkpoints load as they are and hooks and training see the familiar shape. Call once, from the
 * owner's constructor, so the tensor count is fixed from then on; {@link disposeWeight} frees the copy.
 */
export function prepareLinearWeight(weight: tf.Variable): void {
  if (prefersInOutWeights()) registerDerived(weight, 'transposed', transpose);
}

/** `weight` ([out, in]) as `[in, out]`: the prepared copy, or a transpose made for this call. */
function transposedWeight(weight: tf.Tensor2D): tf.Tensor2D {
  return derivedOf(weight, 'transposed', transpose) as tf.Tensor2D;
}

/**
 * `act(x [..., in] · weightᵀ [in, out] + bias) + residual` over the last dimension, flattening
 * leading dimensions for one 2-D matmul. `activation` is an HF activation name (see `activation`);
 * without it the map is linear. `residual` ([..., out], optional) is a pre-norm block's residual
 * connection around its last projection; the sum is the one `residual.add(...)` computes. One
 * fused kernel where the backend has it.
 */
export function linear(x: tf.Tensor, weight: tf.Tensor, bias?: tf.Tensor, activation?: string, residual?: tf.Tensor): tf.Tensor {
  const inFeatures = x.shape[x.rank - 1]!;
  if (weight.shape[1] !== inFeatures) {
    throw new Error(`linear: input has ${inFeatures} features, weight expects ${weight.shape[1]}`);
  }
  const outShape = [...x.shape.slice(0, -1), weight.shape[0]!];
  if (residual !== undefined && !tf.util.arraysEqual(residual.shape, outShape)) {
    throw new Error(`linear: residual is [${residual.shape}], the output [${outShape}]`);
  }
  requireUnpackedWhileRecording(weight, 'linear');
  const fusedActivation = activation === undefined ? 'linear' : fusedActivationName(activation);
  // A backend's fused linear kernel: any leading dims, bias and activation in the GEMM's epilogue.
  if (fusedActivation !== undefined && canFuse(FUSED.linear)) {
    return runFused(FUSED.linear, { x, weight, bias, residual }, { activation: fusedActivation });
  }
  return tf.tidy(() => {
    const y = affine(x, weight, bias);
    const activated = activation === undefined ? y : activationOf(activation)(y);
    return residual === undefined ? activated : tf.add(residual, activated);
  });
}

/**
 * `x · Wᵀ + b` for several linear maps of the same `x` (an attention layer's query, key and value
 * projections), of `preNorm(x)` where given: one fused kernel where the backend has it, whose
 * outputs equal {@link linear}'s (after the norm op) value for value; op by op elsewhere (and
 * while gradients are recorded).
 */
export function linears(x: tf.Tensor, maps: readonly LinearWeights[], preNorm?: PreNorm): tf.Tensor[] {
  if (maps.length > 0 && maps.length <= 8 && canFuse(FUSED.linears)) {
    const pre = preNormArgs(preNorm);
    const inputs: Record<string, tf.Tensor | undefined> = { x, ...pre.inputs };
    maps.forEach(({ weight, bias }, j) => {
      inputs[`weight${j}`] = weight;
      inputs[`bias${j}`] = bias;
    });
    return runFused(FUSED.linears, inputs, pre.attrs) as unknown as tf.Tensor[];
  }
  if (preNorm === undefined) return maps.map(({ weight, bias }) => linear(x, weight, bias));
  return tf.tidy(() => {
    const input = normed(x, preNorm);
    return maps.map(({ weight, bias }) => linear(input, weight, bias));
  });
}

/** `x · weightᵀ + bias` in tfjs ops, reading the weight in the layout the backend prefers. */
function affine(x: tf.Tensor, weight: tf.Tensor, bias?: tf.Tensor): tf.Tensor {
  const flat = x.reshape([-1, x.shape[x.rank - 1]!]) as tf.Tensor2D;
  let y: tf.Tensor;
  if (prefersInOutWeights()) {
    // Not tf.fused.matMul with a bias: on the wasm backend (tfjs 4.22) it returns wrong values
    // when combined with transposeB. Nor transposeB at all there: it is many times slower than a
    // plain product with the weight already laid out [in, out].
    const product = tf.matMul(flat, transposedWeight(weight as tf.Tensor2D));
    y = bias === undefined ? product : tf.add(product, bias);
  } else {
    // BLAS backends read [out, in] transposed for free and add the bias in the GEMM's epilogue.
    y = tf.fused.matMul({ a: flat, b: weight as tf.Tensor2D, transposeB: true, bias });
  }
  return tf.reshape(y, [...x.shape.slice(0, -1), weight.shape[0]!]);
}

/**
 * `act(x · gateᵀ + gate bias) * (x · upᵀ + up bias)`, the inner product of a gated (SwiGLU-style)
 * feed-forward: both products and the activation in one fused kernel where the backend has it.
 */
export function gatedLinear(x: tf.Tensor, gate: LinearWeights, up: LinearWeights, activation: string, preNorm?: PreNorm): tf.Tensor {
  const fusedActivation = fusedActivationName(activation);
  requireUnpackedWhileRecording(gate.weight, 'gatedLinear');
  requireUnpackedWhileRecording(up.weight, 'gatedLinear');
  if (fusedActivation !== undefined && canFuse(FUSED.gatedLinear)) {
    const pre = preNormArgs(preNorm);
    const inputs = { x, gateWeight: gate.weight, upWeight: up.weight, gateBias: gate.bias, upBias: up.bias, ...pre.inputs };
    return runFused(FUSED.gatedLinear, inputs, { activation: fusedActivation, ...pre.attrs });
  }
  return tf.tidy(() => {
    const input = normed(x, preNorm);
    return gatedActivation(activation)(linear(input, gate.weight, gate.bias), linear(input, up.weight, up.bias));
  });
}

/**
 * `down(act(gate(x)) * up(x)) + residual` (of `preNorm(x)` where given): a pre-norm block's whole
 * gated feed-forward. One kernel where the backend has it, with {@link gatedLinear} and
 * {@link linear}'s values; those two ops elsewhere (and while gradients are recorded).
 */
export function gatedFeedForward(
  x: tf.Tensor,
  weights: { gate: LinearWeights; up: LinearWeights; down: LinearWeights },
  activation: string,
  preNorm?: PreNorm,
  residual?: tf.Tensor,
): tf.Tensor {
  const { gate, up, down } = weights;
  const fusedActivation = fusedActivationName(activation);
  if (fusedActivation !== undefined && canFuse(FUSED.gatedFeedForward)) {
    const pre = preNormArgs(preNorm);
    const inputs = {
      x, gateWeight: gate.weight, upWeight: up.weight, downWeight: down.weight,
      gateBias: gate.bias, upBias: up.bias, downBias: down.bias, residual, ...pre.inputs,
    };
    return runFused(FUSED.gatedFeedForward, inputs, { activation: fusedActivation, ...pre.attrs });
  }
  return tf.tidy(() => linear(gatedLinear(x, gate, up, activation, preNorm), down.weight, down.bias, undefined, residual));
}
