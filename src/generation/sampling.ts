/** How the next token is chosen from the logits. */
export type Strategy = 'greedy' | GreedyStrategy | SamplingStrategy;

/** Always the most likely token (ties go to the lowest id, as torch.argmax). */
export interface GreedyStrategy {
  kind: 'greedy';
}

/**
 * Sample from softmax(logits / temperature), restricted to the `topK` most likely tokens and then
 * to the smallest set whose probability reaches `topP`. The same `seed` gives the same tokens; without one, every call draws anew.
 */
export interface SamplingStrategy {
  kind: 'sample';
  /** > 0; default 1. */
  temperature?: number;
  /** Keep only the k most likely tokens; default all. */
  topK?: number;
  /** Nucleus: keep the most likely tokens until their probability sums to topP (0 < p ≤ 1); default 1. */
  topP?: number;
  /** Seed of the random stream, for reproducible tokens; default: a fresh random seed per call. */
  seed?: number;
}

/** Picks one token id from a row of logits. */
export type TokenPicker = (logits: Float32Array) => number;

/** Whether `strategy` (undefined: the default) always takes the most likely token. */
export function isGreedy(strategy: Strategy | undefined): boolean {
  return strategy === undefined || strategy === 'greedy' || (typeof strategy === 'object' && strategy !== null && strategy.kind === 'greedy');
}

/** Check a strategy's settings and build its picker (one per generate call, one random stream). */
export function createPicker(strategy: Strategy = { kind: 'greedy' }): TokenPicker {
  if (strategy === 'greedy') return argMax;
  // A string other than 'greedy' would otherwise read as an object without a kind.
  if (typeof strategy !== 'object' || strategy === null) {
    throw new Error(`unknown strategy ${JSON.stringify(strategy)} (use 'greedy' or { kind: 'sample', temperature, topK, topP, seed })`);
  }
  if (strategy.kind === 'greedy') return argMax;
  if (strategy.kind !== 'sample') throw new Error(`unknown strategy kind '${(strategy as { kind: string }).kind}' (use 'greedy' or 'sample')`);
  const temperature = strategy.temperature ?? 1;
  const topK = strategy.topK;
  const topP = strategy.topP ?? 1;
  if (!(temperature > 0)) throw new Error(`strategy.temperature must be > 0, got ${temperature} (use kind 'greedy' for argmax)`);
  if (topK !== undefined && !(Number.isInteger(topK) && topK >= 1)) throw new Error(`strategy.topK must be a positive integer, got ${topK}`);
  if (!(topP > 0 && topP <= 1)) throw new Error(`strategy.topP must be in (0, 1], got ${topP}`);
  const seed = strategy.seed ?? globalThis.crypto.getRandomValues(new Uint32Array(1))[0]!;
  if (!Number.isSafeInteger(seed)) throw new Error(`strategy.seed must be an integer, got ${seed}`);
  const random = mulberry32(seed);
  return (logits) => sample(logits, temperature, topK, topP, random());
}

function argMax(logits: Float32Array): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i]! > logits[best]!) best = i;
  return best;
}

function sample(logits: Float32Array, temperature: number, topK: number | undefined, topP: number, r: number): number {
  // Candidates by decreasing logit; the top-k cut first, as HF applies its warpers.
  let order = Array.from(logits.keys()).sort((a, b) => logits[b]! - logits[a]! || a - b);
  if (topK !== undefined && topK < order.length) order = order.slice(0, topK);
  const top = logits[order[0]!]! / temperature;
  const weights = order.map((i) => Math.exp(logits[i]! / temperature - top));
  const total = weights.reduce((s, w) => s + w, 0);
  let keep = weights.length;
  if (topP < 1) {
    let mass = 0;
    for (let i = 0; i < weights.length; i++) {
      mass += weights[i]! / total;
      if (mass >= topP) {
        keep = i + 1;
        break;
      }
    }
  }
  const kept = weights.slice(0, keep);
  let target = r * kept.reduce((s, w) => s + w, 0);
  for (let i = 0; i < kept.length; i++) {
    target -= kept[i]!;
    if (target < 0) return order[i]!;
  }
  return order[keep - 1]!;
}

/** A small seeded PRNG (mulberry32): uniform numbers in [0, 1). */
function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
