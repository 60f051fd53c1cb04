/**
 * What the Lens shows, computed with Tessera's hooks API only (runWithCache, runWithHooks,
 * addHook): attention patterns, Mamba internals, the logit lens, hidden-state norms, ablations.
 * Every function takes the model and a prompt's ids and returns plain arrays; no tensor outlives a call.
 */
import * as tf from '@tensorflow/tfjs-core';
import { disposeOutput, type CausalLM, type HookHandle } from '../../src/browser.js';

/** What kind of mixer each layer has, read from the hook points. */
export interface LayerKinds {
  attention: number[];
  mamba: number[];
  count: number;
}

export function layerKinds(lm: CausalLM): LayerKinds {
  const points = new Set(lm.hookPoints());
  const count = lm.layers.length;
  const range = Array.from({ length: count }, (_, i) => i);
  return {
    attention: range.filter((i) => points.has(`layers.${i}.mixer.probs`)),
    mamba: range.filter((i) => points.has(`layers.${i}.mixer.delta`)),
    count,
  };
}

function idsTensor(ids: number[]): tf.Tensor2D {
  return tf.tensor2d([ids], [1, ids.length], 'int32');
}

/** Attention probabilities of every attention layer: layer -> [heads][query][key]. */
export function attentionPatterns(lm: CausalLM, ids: number[]): Map<number, number[][][]> {
  const kinds = layerKinds(lm);
  const input = idsTensor(ids);
  const { output, cache } = lm.runWithCache(input, { names: kinds.attention.map((i) => `layers.${i}.mixer.probs`) });
  const result = new Map(kinds.attention.map((i) => [i, (cache.get(`layers.${i}.mixer.probs`).arraySync() as number[][][][])[0]!]));
  disposeOutput(output);
  cache.dispose();
  input.dispose();
  return result;
}

/** One Mamba layer's internals over the prompt. */
export interface MambaInternals {
  /** Δ = softplus(dt_proj(dt)): [channel][time]. */
  delta: number[][];
  /** The gate SiLU(z) that multiplies the scan output: [channel][time]. */
  gate: number[][];
  /** ‖h‖ over the state size, per channel, after each token: [channel][time]. */
  stateNorm: number[][];
}

const transpose = (m: number[][]): number[][] => m[0]!.map((_, j) => m.map((row) => row[j]!));

/**
 * Δ, the gate and the SSM state norm of every Mamba layer. The `state` tap holds h after the
 * last token of a call, so the state after token t comes from a run over the first t tokens.
 */
export function mambaInternals(lm: CausalLM, ids: number[]): Map<number, MambaInternals> {
  const { mamba } = layerKinds(lm);
  const result = new Map<number, MambaInternals>();
  if (mamba.length === 0) return result;
  const input = idsTensor(ids);
  const names = mamba.flatMap((i) => [`layers.${i}.mixer.delta`, `layers.${i}.mixer.inProj`]);
  const { output, cache } = lm.runWithCache(input, { names });
  for (const i of mamba) {
    const delta = (cache.get(`layers.${i}.mixer.delta`).arraySync() as number[][][])[0]!;
    const gate = tf.tidy(() => {
      const z = tf.split(cache.get(`layers.${i}.mixer.inProj`), 2, -1)[1]!; // in_proj -> [x, z]
      return (z.mul(tf.sigmoid(z)).arraySync() as number[][][])[0]!;
    });
    result.set(i, { delta: transpose(delta), gate: transpose(gate), stateNorm: [] });
  }
  disposeOutput(output);
  cache.dispose();
  input.dispose();
  const perTime = new Map<number, number[][]>(mamba.map((i) => [i, []]));
  for (let t = 1; t <= ids.length; t++) {
    const prefix = idsTensor(ids.slice(0, t));
    const run = lm.runWithCache(prefix, { names: mamba.map((i) => `layers.${i}.mixer.state`) });
    for (const i of mamba) {
      const norms = tf.tidy(() => tf.norm(run.cache.get(`layers.${i}.mixer.state`), 'euclidean', -1).arraySync() as number[][]); // [1, D]
      perTime.get(i)!.push(norms[0]!);
    }
    disposeOutput(run.output);
    run.cache.dispose();
    prefix.dispose();
  }
  for (const i of mamba) result.get(i)!.stateNorm = transpose(perTime.get(i)!);
  return result;
}

/** The top tokens of one position at one layer. */
export interface LensCell {
  ids: number[];
  probs: number[];
}

/**
 * The logit lens: each layer's residual stream through the final norm and the LM head, by
 * handing it to `finalNorm` in place of the last layer's (a pre-hook), so the model's own norm
 * and head compute it. Returns [layer][position] cells, layer `count - 1` being the model's logits.
 */
export function logitLens(lm: CausalLM, ids: number[], top = 5): LensCell[][] {
  const { count } = layerKinds(lm);
  const input = idsTensor(ids);
  const { output, cache } = lm.runWithCache(input, { names: Array.from({ length: count }, (_, i) => `layers.${i}`) });
  disposeOutput(output);
  const rows: LensCell[][] = [];
  for (let i = 0; i < count; i++) {
    const residual = cache.get(`layers.${i}`);
    const out = lm.runWithHooks(input, [{ name: 'finalNorm', pre: true, fn: () => residual }]);
    rows.push(topTokens(out.logits, top));
    disposeOutput(out);
  }
  cache.dispose();
  input.dispose();
  return rows;
}

function topTokens(logits: tf.Tensor, k: number): LensCell[] {
  return tf.tidy(() => {
    const { values, indices } = tf.topk(tf.softmax(logits.squeeze([0])), k);
    const p = values.arraySync() as number[][];
    const ix = indices.arraySync() as number[][];
    return ix.map((row, t) => ({ ids: row, probs: p[t]! }));
  });
}

/** ‖x‖ of the residual stream per position, for the embeddings and after each layer: [layer + 1][position]. */
export function hiddenNorms(lm: CausalLM, ids: number[]): number[][] {
  const input = idsTensor(ids);
  const out = lm.forward(input);
  const norms = out.allOutputs.map((h) => tf.tidy(() => (tf.norm(h, 'euclidean', -1).arraySync() as number[][])[0]!));
  disposeOutput(out);
  input.dispose();
  return norms;
}

/** What to ablate: a layer's whole mixer, or one attention head. */
export type Ablation = { layer: number; head?: number };

/**
 * Hook an ablation into the model (until the handle is removed, generation included): a zeroed
 * mixer output, or a head's attention probabilities zeroed.
 */
export function addAblation(lm: CausalLM, ablation: Ablation): HookHandle {
  const { layer, head } = ablation;
  if (head === undefined) return lm.addHook(`layers.${layer}.mixer`, (x) => tf.zerosLike(x));
  return lm.addHook(`layers.${layer}.mixer.probs`, (probs) => {
    const heads = probs.shape[1]!;
    const keep = tf.tensor1d(Array.from({ length: heads }, (_, h) => (h === head ? 0 : 1))).reshape([1, heads, 1, 1]);
    return probs.mul(keep);
  });
}

/** Next-token predictions with and without an ablation, and the largest change of a logit. */
export interface AblationResult {
  before: LensCell;
  after: LensCell;
  maxLogitChange: number;
}

export function compareAblation(lm: CausalLM, ids: number[], ablation: Ablation, top = 5): AblationResult {
  const input = idsTensor(ids);
  const last = (logits: tf.Tensor) => tf.tidy(() => logits.slice([0, ids.length - 1, 0], [1, 1, -1]));
  const plain = lm.forward(input);
  const beforeLogits = last(plain.logits);
  disposeOutput(plain);
  const handle = addAblation(lm, ablation);
  let afterLogits: tf.Tensor;
  try {
    const ablated = lm.forward(input);
    afterLogits = last(ablated.logits);
    disposeOutput(ablated);
  } finally {
    handle.remove();
  }
  const result = {
    before: topTokens(beforeLogits, top)[0]!,
    after: topTokens(afterLogits, top)[0]!,
    maxLogitChange: tf.tidy(() => afterLogits.sub(beforeLogits).abs().max().dataSync()[0]!),
  };
  tf.dispose([beforeLogits, afterLogits, input]);
  return result;
}
