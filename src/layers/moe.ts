import * as tf from '@tensorflow/tfjs-core';
import type { ForwardContext } from './context.js';
import { FeedForward } from './feed-forward.js';
import { Linear } from './linear.js';
import { Layer, ModuleList } from './module.js';

export interface MixtureOfExpertsOptions {
  hiddenSize: number;
  /** Width of each expert's gated feed-forward. */
  intermediateSize: number;
  numExperts: number;
  /** Experts per token (HF `num_experts_per_tok`). */
  topK: number;
  /** Activation of the experts (HF `hidden_act`). */
  activation: string;
  /**
   * Rescale the top-k weights to sum to 1 (Mixtral does). Jamba does not: its weights are the
   * softmax over all experts, kept as they are. Default false.
   */
  renormalize?: boolean;
}

/** The values a mixture of experts exposes to hooks as `<path>.<name>`: the router's logits [B, L, E]. */
export const MOE_TAPS = { routerLogits: 'routerLogits' } as const;

/**
 * A sparse mixture of gated feed-forward experts: a router scores every expert per token,
 *   weights = softmax(router(x)) over all experts,  keep the top-k,
 *   out = Σ_k weight_k · expert_k(x).
 * Only the chosen experts run, each on the tokens routed to it. Hook tap: `routerLogits` [B, L, E].
 */
export class MixtureOfExperts extends Layer {
  readonly router: Linear;
  readonly experts: ModuleList<FeedForward>;

  constructor(readonly options: MixtureOfExpertsOptions) {
    super();
    const { hiddenSize, intermediateSize, numExperts, topK, activation } = options;
    if (!Number.isInteger(numExperts) || numExperts < 1) throw new Error(`MoE: numExperts must be a positive integer, got ${numExperts}`);
    if (!Number.isInteger(topK) || topK < 1 || topK > numExperts) {
      throw new Error(`MoE: topK (num_experts_per_tok) must be between 1 and numExperts (${numExperts}), got ${topK}`);
    }
    this.router = this.addModule('router', new Linear(hiddenSize, numExperts));
    const experts = Array.from({ length: numExperts }, () => new FeedForward({ hiddenSize, intermediateSize, activation, gated: true }));
    this.experts = this.addModule('experts', new ModuleList(experts));
    this.declareTaps(...Object.values(MOE_TAPS));
  }

  protected forward(x: tf.Tensor, ctx: ForwardContext): tf.Tensor {
    return tf.tidy(() => {
      const { topK, numExperts } = this.options;
      const hidden = x.shape[x.rank - 1]!;
      const tokens = x.reshape([-1, hidden]) as tf.Tensor2D; // [T, H]
      const logits = this.tap(MOE_TAPS.routerLogits, this.router.call(x, ctx), ctx).reshape([-1, numExperts]);
      const { values, indices } = tf.topk(tf.softmax(logits), topK); // [T, k] each
      const weights = this.options.renormalize ? values.div(values.sum(-1, true)) : values;

      // Run each expert once on the tokens routed to it, then put every (token, slot) result back
      // in token-major order [T·k, H]. The routing choice is data, read back once per call.
      const chosen = indices.dataSync();
      const outputs: tf.Tensor[] = [];
      const order: number[] = []; // order[i] = the (token·k + slot) that row i of `outputs` belongs to
      for (let e = 0; e < numExperts; e++) {
        const slots: number[] = [];
        chosen.forEach((expert, slot) => {
          if (expert === e) slots.push(slot);
        });
        if (slots.length === 0) continue;
        const rows = tf.gather(tokens, tf.tensor1d(slots.map((s) => Math.floor(s / topK)), 'int32'));
        outputs.push(this.experts.items[e]!.call(rows, ctx));
        order.push(...slots);
      }
      const inverse = new Int32Array(order.length);
      order.forEach((slot, row) => (inverse[slot] = row));
      const perSlot = tf.gather(tf.concat(outputs, 0), tf.tensor1d(inverse, 'int32')); // [T·k, H]
      const mixed = perSlot.reshape([-1, topK, hidden]).mul(weights.expandDims(2)).sum(1); // [T, H]
      return mixed.reshape(x.shape);
    });
  }
}
