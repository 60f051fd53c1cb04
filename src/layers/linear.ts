import * as tf from '@tensorflow/tfjs-core';
import type { ForwardContext } from './context.js';
import { FUSED } from '../kernels/contract.js';
import { canFuse, runFused } from '../ops/dispatch.js';
import { init } from './init.js';
import { Layer } from './module.js';
import { prefersInOutWeights, registerTransposed, transposedWeight } from './weight-layout.js';

export interface LinearOptions {
  bias?: boolean;
}

/**
 * y = x Wᵀ + b over the last dimension. The weight keeps PyTorch's `[out, in]` layout so that
 * checkpoints load as they are; the matmul reads a cached `[in, out]` copy (see weight-layout.ts).
 */
export class Linear extends Layer {
  readonly weight: tf.Variable;
  readonly bias?: tf.Variable;

  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    options: LinearOptions = {},
  ) {
    super();
    this.weight = this.addParameter('weight', init.normal([outFeatures, inFeatures]));
    if (options.bias ?? false) this.bias = this.addParameter('bias', init.zeros([outFeatures]));
    registerTransposed(this.weight);
  }

  protected forward(x: tf.Tensor): tf.Tensor {
    return linear(x, this.weight, this.bias);
  }
}

/** `x [..., in] · weightᵀ [in, out] (+ bias)`, flattening leading dimensions for one 2-D matmul. */
export function linear(x: tf.Tensor, weight: tf.Tensor, bias?: tf.Tensor): tf.Tensor {
  const inFeatures = x.shape[x.rank - 1]!;
  const outFeatures = weight.shape[0]!;
  if (weight.shape[1] !== inFeatures) {
    throw new Error(`linear: input has ${inFeatures} features, weight expects ${weight.shape[1]}`);
  }
  // A backend's fused linear kernel: any leading dims, bias added by the GEMM, one kernel.
  if (canFuse(FUSED.linear)) return runFused(FUSED.linear, { x, weight, bias }, { activation: 'linear' });
  const flat = x.reshape([-1, inFeatures]) as tf.Tensor2D;
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
  return tf.reshape(y, [...x.shape.slice(0, -1), outFeatures]);
}

/** A no-op layer for optional slots (a block without a norm here, a model without a head). */
export class Identity extends Layer {
  protected forward(x: tf.Tensor, _ctx?: ForwardContext): tf.Tensor {
    return x;
  }
}
