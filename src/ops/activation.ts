import * as tf from '@tensorflow/tfjs-core';
import { FUSED, type FusedActivation } from '../kernels/contract.js';
import { canFuse, recordingGradients, runFused, runFusedOutputs } from './dispatch.js';

/** An elementwise activation. */
export type Activation = (x: tf.Tensor) => tf.Tensor;

/** A gated activation: `act(gate) * up` (the inner product of SwiGLU-style MLPs). */
export type GatedActivation = (gate: tf.Tensor, up: tf.Tensor) => tf.Tensor;

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

/**
 * The name fused kernels ({@link FUSED}) use for each HF activation: one vectorised pass instead of
 * up to five elementwise ops (and, in an MLP, the epilogue of the up-projection's GEMM).
 */
const FUSED_NAMES: Record<string, FusedActivation> = {
  gelu: 'gelu',
  gelu_new: 'gelu_tanh',
  gelu_pytorch_tanh: 'gelu_tanh',
  gelu_fast: 'gelu_tanh',
  silu: 'silu',
  swish: 'silu',
  relu: 'relu',
  tanh: 'tanh',
};

/** The fused kernels' name for HF activation `name` (undefined for one they lack). */
export function fusedActivationName(name: string): FusedActivation | undefined {
  return FUSED_NAMES[name];
}

function reference(name: string): Activation {
  const fn = ACTIVATIONS[name];
  if (fn === undefined) {
    throw new Error(`unknown activation '${name}' (hidden_act); supported: ${ACTIVATION_NAMES.join(', ')}`);
  }
  return fn;
}

/**
 * The activation HF calls `name` (`gelu` is the erf form, as in HF): the backend's fused kernel
 * where {@link canFuse} allows, else the composed tfjs ops above. Throws for a name it does not know.
 */
export function activation(name: string): Activation {
  const composed = reference(name);
  const fused = FUSED_NAMES[name];
  if (fused === undefined) return composed;
  return (x) => (canFuse(FUSED.activation) ? fusedActivation(fused, x) : composed(x));
}

/** `act(gate) * up` for HF activation `name`, in one fused kernel where the backend has it. */
export function gatedActivation(name: string): GatedActivation {
  const composed = reference(name);
  const fused = FUSED_NAMES[name];
  return (gate, up) =>
    fused !== undefined && canFuse(FUSED.activation) ? fusedActivation(fused, gate, up) : tf.tidy(() => composed(gate).mul(up));
}

/**
 * The backend's activation kernel, `act(x)` (times `up`); while gradients are recorded, with a
 * gradient that runs its backward kernel once for both inputs.
 */
function fusedActivation(name: FusedActivation, x: tf.Tensor, up?: tf.Tensor): tf.Tensor {
  const attrs = { activation: name };
  if (!recordingGradients()) return runFused(FUSED.activation, { x, up }, attrs);
  // tfjs types the forward as taking (...tensors, save) in one rest parameter.
  const withGradient = tf.customGrad(((...args: unknown[]) => {
    const save = args.pop() as tf.GradSaveFunc;
    const [input, upInput] = args as [tf.Tensor, tf.Tensor | undefined];
    // Saved: the backward pass runs after the forward's scopes have disposed what they made.
    save(upInput === undefined ? [input] : [input, upInput]);
    return {
      value: runFused(FUSED.activation, { x: input, up: upInput }, attrs),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => runFusedOutputs(FUSED.activationBackward, { x: saved[0], up: saved[1], dy }, attrs),
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return up === undefined ? withGradient(x) : withGradient(x, up);
}
