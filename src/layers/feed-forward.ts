import * as tf from '@tensorflow/tfjs-core';
import { activation, fusedActivationName, gatedActivation, type Activation, type GatedActivation } from './activations.js';
import type { ForwardContext } from './context.js';
import { FUSED } from '../kernels/contract.js';
import { canFuse, runFused } from '../ops/dispatch.js';
import { Linear } from './linear.js';
import { Layer } from './module.js';

export interface FeedForwardOptions {
  hiddenSize: number;
  intermediateSize: number;
  /** HF activation name (`gelu`, `silu`, ...). */
  activation: string;
  /** Gated (SwiGLU-style): down(act(gate(x)) * up(x)); plain: down(act(up(x))). */
  gated: boolean;
  bias?: boolean;
}

/** The position-wise MLP of a block, plain (BERT) or gated (Llama, Jamba). */
export class FeedForward extends Layer {
  readonly gate?: Linear;
  readonly up: Linear;
  readonly down: Linear;
  private readonly act: Activation;
  private readonly gatedAct: GatedActivation;
  /** The activation's name in fused kernels; undefined when they lack it. */
  private readonly fusedAct?: string;

  constructor(readonly options: FeedForwardOptions) {
    super();
    const { hiddenSize, intermediateSize, bias } = options;
    if (options.gated) this.gate = this.addModule('gate', new Linear(hiddenSize, intermediateSize, { bias }));
    this.up = this.addModule('up', new Linear(hiddenSize, intermediateSize, { bias }));
    this.down = this.addModule('down', new Linear(intermediateSize, hiddenSize, { bias }));
    this.act = activation(options.activation);
    this.gatedAct = gatedActivation(options.activation);
    this.fusedAct = fusedActivationName(options.activation);
  }

  protected forward(x: tf.Tensor, ctx: ForwardContext): tf.Tensor {
    return tf.tidy(() => {
      const inner = this.fusedInner(x) ?? this.composedInner(x, ctx);
      return this.down.call(inner, ctx);
    });
  }

  /** `act(gate(x)) * up(x)` or `act(up(x))` through each Linear's call (so their hooks run). */
  private composedInner(x: tf.Tensor, ctx: ForwardContext): tf.Tensor {
    const up = this.up.call(x, ctx);
    return this.gate !== undefined ? this.gatedAct(this.gate.call(x, ctx), up) : this.act(up);
  }

  /**
   * The same as one fused kernel (activation in the GEMM's epilogue, both gated products in one
   * call), where the backend has it and no hook on `gate` or `up` would be skipped.
   */
  private fusedInner(x: tf.Tensor): tf.Tensor | undefined {
    if (this.fusedAct === undefined || this.up.hasHooks() || this.gate?.hasHooks()) return undefined;
    const attrs = { activation: this.fusedAct };
    if (this.gate === undefined) {
      if (!canFuse(FUSED.linear)) return undefined;
      return runFused(FUSED.linear, { x, weight: this.up.weight, bias: this.up.bias }, attrs);
    }
    if (!canFuse(FUSED.gatedLinear)) return undefined;
    const { weight: gateWeight, bias: gateBias } = this.gate;
    const { weight: upWeight, bias: upBias } = this.up;
    return runFused(FUSED.gatedLinear, { x, gateWeight, upWeight, gateBias, upBias }, attrs);
  }
}
