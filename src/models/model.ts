import type * as tf from '@tensorflow/tfjs-core';
import type { Module } from '../layers/module.js';
import type { ForwardOptions } from './transformer.js';

/**
 * A model: a module tree with a `forward` from int32 ids [B, L] to an output object. The model
 * classes (`EncoderModel`, `DecoderModel`, `CausalLM`) implement it; it is all that the hook
 * helpers and the distiller ask of a model, so a user's own module tree with a `forward` works
 * with them too. Generation needs the LM head as well and takes a `CausalLM`.
 */
export interface Model<Output = object> extends Module {
  /** Run `inputIds` [B, L] (int32); the caller owns the tensors of the output. */
  forward(inputIds: tf.Tensor2D, options?: ForwardOptions): Output;
}

/** @deprecated Renamed {@link Model}: it is the one model interface, not the hooks' own. */
export type HookableModel = Model;
