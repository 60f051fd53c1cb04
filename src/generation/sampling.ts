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

/**
 * The token `r` (uniform in [0, 1)) draws from `logits` under temperature, top-k and top-p, HF's
 * warpers in HF's order. Exported for its tests; {@link createPicker} is the API.
 */
export function sample(logits: Float32Array, temperature: number, topK: number | undefined, topP: number, r: number): number {
  // Candidates by decreasing logit (ties by id); the top-k cut first, as HF applies its warpers.
  const order = topK !== undefined && topK < logits.length ? topCandidates(logits, topK) : rowByDecreasingLogit(logits);
  const top = logits[order[0]!]! / temperature;
  // Typed arrays and plain loops: the same float operations, in the same order, as map and reduce.
  const weights = new Float64Array(order.length);
  let total = 0;
  for (let i = 0; i < order.length; i++) {
    weights[i] = Math.exp(logits[order[i]!]! / temperature - top);
    total += weights[i]!;
  }
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
  let keptTotal = 0;
  for (let i = 0; i < keep; i++) keptTotal += weights[i]!;
  let target = r * keptTotal;
  for (let i = 0; i < keep; i++) {
    target -= weights[i]!;
    if (target < 0) return order[i]!;
  }
  return order[keep - 1]!;
}

/** `ids` sorted by decreasing logit, ties by increasing id. */
function byDecreasingLogit(logits: Float32Array, ids: number[]): number[] {
  return ids.sort((a, b) => logits[b]! - logits[a]! || a - b);
}

/** Ids a sort key can carry beside the logit's 32 bits in a float64's 53. */
const KEY_IDS = 2 ** 21;

/**
 * Every id of the row in {@link byDecreasingLogit}'s order, by a native sort of float64 keys: the
 * logit's bits mapped to an order-preserving integer, then the id. A comparator sort over a
 * vocabulary-sized row took ~10 ms a token. -0 sorts as +0, as the comparator sees them.
 */
function rowByDecreasingLogit(logits: Float32Array): ArrayLike<number> {
  if (logits.length > KEY_IDS) return byDecreasingLogit(logits, Array.from(logits.keys()));
  const one = new Float32Array(1);
  const bits = new Uint32Array(one.buffer);
  const keys = new Float64Array(logits.length);
  for (let id = 0; id < logits.length; id++) {
    one[0] = logits[id]! + 0;
    const u = bits[0]!;
    const ascending = u >= 0x80000000 ? ~u >>> 0 : u + 0x80000000; // larger float, larger integer
    keys[id] = (0xffffffff - ascending) * KEY_IDS + id;
  }
  keys.sort();
  const ids = new Int32Array(keys.length);
  for (let i = 0; i < keys.length; i++) ids[i] = keys[i]! % KEY_IDS;
  return ids;
}

/**
 * The first `k` ids of {@link byDecreasingLogit} over the whole row, without sorting it: one pass
 * keeps the best k seen in a binary heap whose root is the worst of them, then only those k are
 * sorted. Sorting a vocabulary-sized row took ~10 ms a token, more than the model's whole step.
 */
function topCandidates(logits: Float32Array, k: number): number[] {
  // a ranks below b: a smaller logit, or the same logit and a larger id.
  const below = (a: number, b: number) => logits[a]! < logits[b]! || (logits[a]! === logits[b]! && a > b);
  const heap: number[] = [];
  const siftDown = (at: number) => {
    for (;;) {
      const left = 2 * at + 1;
      if (left >= heap.length) return;
      const child = left + 1 < heap.length && below(heap[left + 1]!, heap[left]!) ? left + 1 : left;
      if (!below(heap[child]!, heap[at]!)) return;
      [heap[at], heap[child]] = [heap[child]!, heap[at]!];
      at = child;
    }
  };
  for (let id = 0; id < logits.length; id++) {
    if (heap.length < k) {
      heap.push(id);
      for (let at = heap.length - 1; at > 0; ) {
        const parent = (at - 1) >> 1;
        if (!below(heap[at]!, heap[parent]!)) break;
        [heap[at], heap[parent]] = [heap[parent]!, heap[at]!];
        at = parent;
      }
    } else if (below(heap[0]!, id)) {
      heap[0] = id;
      siftDown(0);
    }
  }
  return byDecreasingLogit(logits, heap);
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
