import * as tf from '@tensorflow/tfjs-core';

/** An elementwise activation. */
export type Activation = (x: tf.Tensor) => tf.Tensor;

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

/** GELU, exact form: x · Φ(x) = 0.5 x (1 + erf(x / √2)) (HF `gelu`). */
const geluErf: Activation = (x) => tf.tidy(() => x.mul(tf.erf(x.mul(Math.SQRT1_2)).add(1)).mul(0.5));

/** GELU, tanh approximation (HF `gelu_new`, `gelu_pytorch_tanh`). */
const geluTanh: Activation = (x) =>
  tf.tidy(() => x.mul(tf.tanh(x.add(x.pow(3).mul(0.044715)).mul(SQRT_2_OVER_PI)).add(1)).mul(0.5));

const ACTIVATIONS: Record<string, Activation> = {
  gelu: geluErf,
  gelu_new: geluTanh,
  gelu_pytorch_tanh: geluTanh,
  gelu_fast: geluTanh,
  silu: (x) => tf.tidy(() => x.mul(tf.sigmoid(x))),
  swish: (x) => tf.tidy(() => x.mul(tf.sigmoid(x))),
  relu: (x) => tf.relu(x),
  tanh: (x) => tf.tanh(x),
};

/** Names accepted by {@link activation}, as they appear in HF configs (`hidden_act`). */
export const ACTIVATION_NAMES = Object.keys(ACTIVATIONS);

/** The activation HF calls `name` (`gelu` is the erf form, as in HF). */
export function activation(name: string): Activation {
  const fn = ACTIVATIONS[name];
  if (fn === undefined) {
    throw new Error(`unknown activation '${name}' (hidden_act); supported: ${ACTIVATION_NAMES.join(', ')}`);
  }
  return fn;
}
