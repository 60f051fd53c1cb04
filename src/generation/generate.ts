import * as tf from '@tensorflow/tfjs-core';
import type { CausalLM } from '../models/causal-lm.js';
import { IdOutOfRangeError } from '../models/errors.js';
import { markInputIdsChecked } from '../models/transformer.js';
import { checkKeys, type KeyList } from '../util/options.js';
import { GenerationCache } from './cache.js';
import { NonFiniteLogitsError, StatelessMixerError } from './errors.js';
import { greedyPicks, unusableLogit, USABLE } from '../ops/greedy-pick.js';
import { createPicker, isGreedy, type GreedyStrategy, type SamplingStrategy, type Strategy } from './sampling.js';
import { yieldToEventLoop } from '../util/next-tick.js';

/** Tokens added per prompt when `maxNewTokens` is not given: HF's GenerationConfig default length. */
export const DEFAULT_MAX_NEW_TOKENS = 20;

/** Options of {@link generate} and {@link stream}. */
export interface GenerateOptions {
  /** Most tokens to add per prompt (≥ 1). Default {@link DEFAULT_MAX_NEW_TOKENS}. */
  maxNewTokens?: number;
  /** A row ends after producing this token (or any of these); it is included in the output. */
  eosTokenId?: number | readonly number[];
  /** A row ends once its new tokens end with one of these sequences (included in the output). */
  stop?: readonly (readonly number[])[];
  /** Greedy (default) or seeded sampling. */
  strategy?: Strategy;
  /** Id fed for left padding and for rows that already ended; masked out either way. Default 0. */
  padTokenId?: number;
  /**
   * Continue from, and leave the state in, this cache (the caller keeps and disposes it). It then
   * holds every prompt and generated token except the last one generated: pass that token (and
   * anything after it) as the next prompt to resume. Without it a private cache is used and freed.
   */
  cache?: GenerationCache;
  /** Called for every new token, as soon as it is chosen. */
  onToken?: (event: TokenEvent) => void;
  /**
   * HF's `repetition_penalty` (> 0; default 1, none): before a token is chosen, the logit of every
   * id already in the row (this call's prompt and new tokens) is divided by it when positive and
   * multiplied by it when negative, so values above 1 make repeats less likely.
   */
  repetitionPenalty?: number;
}

/** The keys of {@link GenerateOptions}; generate, stream and generateSteps reject any other. */
const GENERATE_OPTION_KEYS = {
  maxNewTokens: true, eosTokenId: true, stop: true, strategy: true, padTokenId: true, cache: true, onToken: true, repetitionPenalty: true,
} as const satisfies KeyList<GenerateOptions>;
const STRATEGY_KEYS: { greedy: KeyList<GreedyStrategy>; sample: KeyList<SamplingStrategy> } = {
  greedy: { kind: true },
  sample: { kind: true, temperature: true, topK: true, topP: true, seed: true },
};

/** One generated token. */
export interface TokenEvent {
  /** Which prompt it continues. */
  row: number;
  token: number;
  /** 0 for the first new token of the call. */
  step: number;
  /** Whether this row has ended (end token, stop sequence or maxNewTokens). */
  done: boolean;
}

/**
 * Continue each prompt with up to `maxNewTokens` tokens and return only the new ids per prompt.
 * The prompts are processed in one forward (prefill) that fills the KV caches and Mamba states;
 * each further token is one single-token forward. Prompts of different lengths are left-padded
 * and masked, with positions counted per row, so a row gets the same tokens as alone.
 */
export function generate(lm: CausalLM, prompts: readonly (readonly number[])[], options: GenerateOptions = {}): number[][] {
  const steps = runSteps(lm, prompts, options, 'generate');
  for (;;) {
    const next = steps.next();
    if (next.done) return next.value;
  }
}

/**
 * {@link generate} as an async iterator of tokens, yielding to the event loop between steps.
 * Leaving the loop early frees the private cache.
 */
export async function* stream(
  lm: CausalLM,
  prompts: readonly (readonly number[])[],
  options: GenerateOptions = {},
): AsyncGenerator<TokenEvent, number[][]> {
  const steps = runSteps(lm, prompts, options, 'stream');
  try {
    for (;;) {
      const next = steps.next();
      if (next.done) return next.value;
      for (const event of next.value) yield event;
      await yieldToEventLoop();
    }
  } finally {
    steps.return([]);
  }
}

/**
 * The loop behind both forms: yields the tokens of each step, returns the new ids per row.
 *
 * Errors: a disposed model throws `ModelDisposedError`; a cache of another model
 * `CacheModelMismatchError`; logits no token can be chosen from (NaN, +Infinity, all -Infinity)
 * `NonFiniteLogitsError`, naming the step and row. Every tensor of the call is freed either way.
 */
export function generateSteps(
  lm: CausalLM,
  prompts: readonly (readonly number[])[],
  options: GenerateOptions = {},
): Generator<TokenEvent[], number[][]> {
  return runSteps(lm, prompts, options, 'generateSteps');
}

/**
 * {@link generateSteps} for callers inside Tessera: `method` names the public entry in errors, and
 * `endRow` (called with every new token of a row, before the row's other end conditions) can end
 * a row early, as text generation does for stop strings.
 */
export function* runSteps(
  lm: CausalLM,
  prompts: readonly (readonly number[])[],
  options: GenerateOptions,
  method: string,
  endRow?: (row: number, token: number) => boolean,
): Generator<TokenEvent[], number[][]> {
  lm.assertNotDisposed(method);
  const vocab = lm.embeddings.word.count;
  checkOptions(options, vocab, method);
  const maxNewTokens = options.maxNewTokens ?? DEFAULT_MAX_NEW_TOKENS;
  const pick = createPicker(options.strategy);
  const pad = options.padTokenId ?? 0;
  const penalty = options.repetitionPenalty ?? 1;
  const eos = new Set(options.eosTokenId === undefined ? [] : [options.eosTokenId].flat());
  // Greedy picks straight from the logits tensor, in the backend's kernel where it has one.
  const greedy = isGreedy(options.strategy) && penalty === 1;
  const cache = options.cache ?? new GenerationCache();
  const owned = options.cache === undefined;
  try {
    // Before the cache's rows are touched: another model's cache fails on whose it is.
    if (!cache.isDisposed) cache.claim(lm, lm.label);
    checkPrompts(prompts, vocab, cache);
    if (cache.batchSize === 0) {
      cache.mask = prompts.map(() => []);
      cache.nextPosition = prompts.map(() => 0);
    }
    const batch = prompts.length;
    const width = Math.max(...prompts.map((p) => p.length));
    const ids: number[][] = [];
    const mask: number[][] = [];
    for (const p of prompts) {
      const padding = width - p.length;
      ids.push([...new Array<number>(padding).fill(pad), ...p]);
      mask.push([...new Array<number>(padding).fill(0), ...p.map(() => 1)]);
    }
    let { logits, picks } = step(lm, cache, ids, mask, greedy);
    assertMixersKeepState(lm, cache);
    const out: number[][] = prompts.map(() => []);
    const done = new Array<boolean>(batch).fill(false);
    for (let n = 0; ; n++) {
      // Row r's logits: read back only where greedy picks did not come with the step, or a check failed.
      const rowOf = (r: number) => logits!.subarray((r * logits!.length) / batch, ((r + 1) * logits!.length) / batch);
      // Every row is checked before any token of the step is handed out. Greedy would turn NaN
      // logits into token 0 forever; the check is one pass over the values read for picking anyway.
      for (let r = 0; r < batch; r++) {
        if (done[r]) continue;
        const check = picks !== undefined ? picks[2 * r + 1]! : unusableLogit(rowOf(r));
        if (check !== USABLE) throw new NonFiniteLogitsError(n, r, cache.nextPosition[r]! - 1, describeUnusable(rowOf(r), check));
      }
      const events: TokenEvent[] = [];
      for (let r = 0; r < batch; r++) {
        if (done[r]) continue;
        let token: number;
        if (picks !== undefined) {
          token = picks[2 * r]!;
        } else {
          const row = rowOf(r);
          token = pick(penalty === 1 ? row : penalize(row, [prompts[r]!, out[r]!], penalty));
        }
        out[r]!.push(token);
        const ended = endRow?.(r, token) ?? false;
        done[r] = ended || eos.has(token) || endsWithStop(out[r]!, options.stop) || out[r]!.length >= maxNewTokens;
        const event = { row: r, token, step: n, done: done[r]! };
        options.onToken?.(event);
        events.push(event);
      }
      yield events;
      if (done.every(Boolean)) return out;
      // Ended rows are fed padding, masked out, so their state stays as it was.
      ({ logits, picks } = step(
        lm,
        cache,
        out.map((o, r) => [done[r] ? pad : o[o.length - 1]!]),
        done.map((d) => [d ? 0 : 1]),
        greedy,
      ));
    }
  } finally {
    if (owned) cache.dispose();
  }
}

/**
 * Run `ids` after what `cache` holds and return the last position's logits, [B × vocab] flat. When
 * `greedy` and the backend makes the picks ({@link greedyPicks}), those instead, and the logits
 * only if a row's check failed (the error describes the value).
 * Ids checked here against the vocabulary (in JS: prompts, picked tokens, the pad id) are not read
 * back from their tensor by the forward to be checked again; any other reaches its clear error there.
 * The cache's positions, mask and length change only once the forward went through.
 */
function step(lm: CausalLM, cache: GenerationCache, ids: number[][], mask: number[][], greedy: boolean): { logits?: Float32Array; picks?: Int32Array } {
  const batch = ids.length;
  const length = ids[0]!.length;
  const next = [...cache.nextPosition];
  const positions = mask.map((row, r) => row.map((m) => (m === 1 ? next[r]!++ : 0)));
  // A mask of all ones masks nothing: leaving it out spares every layer its per-token mask work
  // (and this step the [B, S] tensor).
  const padded = mask.some((row) => row.includes(0)) || cache.mask.some((row) => row.includes(0));
  const fullMask = padded ? cache.mask.map((row, r) => [...row, ...mask[r]!]) : undefined;
  const inputIds = tf.tensor2d(ids, [batch, length], 'int32');
  const vocab = lm.embeddings.word.count;
  if (ids.every((row) => row.every((id) => isTokenId(id, vocab)))) markInputIdsChecked(inputIds);
  // Without padding every row's positions run on from the cache's length, which the forward's
  // offset already says: no position ids then (rotary writes its tables without kernels).
  const consecutive = !padded && cache.nextPosition.every((p) => p === cache.length);
  const positionIds = consecutive ? undefined : tf.tensor2d(positions, [batch, length], 'int32');
  const inputs = positionIds === undefined ? [inputIds] : [inputIds, positionIds];
  const attentionMask = fullMask === undefined ? undefined : tf.tensor2d(fullMask, [batch, fullMask[0]!.length], 'int32');
  if (attentionMask !== undefined) inputs.push(attentionMask);
  try {
    cache.begin();
    let hidden;
    try {
      hidden = lm.forwardHidden(inputIds, { attentionMask, positionIds, cache, offset: cache.length });
      cache.commit();
    } catch (error) {
      cache.rollback();
      throw error;
    }
    cache.length += length;
    cache.nextPosition = next;
    if (fullMask !== undefined) cache.mask = fullMask;
    else cache.mask = cache.mask.map((row, r) => row.concat(mask[r]!));
    try {
      const hiddenSize = hidden.lastHiddenState.shape[2];
      // Read the logits outside tidy: tf.tidy would walk a returned typed array element by element.
      const logits = tf.tidy(() => lm.project(hidden.lastHiddenState.slice([0, length - 1, 0], [batch, 1, hiddenSize]) as tf.Tensor3D));
      try {
        const picks = greedy ? greedyPicks(logits) : undefined;
        if (picks !== undefined && picks.every((v, i) => i % 2 === 0 || v === USABLE)) return { picks };
        return { logits: logits.dataSync() as Float32Array, picks };
      } finally {
        logits.dispose();
      }
    } finally {
      tf.dispose([...hidden.allOutputs, hidden.lastHiddenState]);
    }
  } finally {
    tf.dispose(inputs);
  }
}

/**
 * Throw {@link StatelessMixerError} when a layer's mixer (or any module inside it) holds no state
 * in `cache` after a forward through it. Detected from what the mixers did rather than declared,
 * so a user's mixer needs no flag: one that keeps state passes, one that ignores the cache fails
 * before any token is handed out. An error rather than a warning, because the tokens would be wrong.
 */
function assertMixersKeepState(lm: CausalLM, cache: GenerationCache): void {
  const stateless = lm.layers.items
    .map((block) => block.mixer)
    // Listed under its own path: namedModules records the paths that hooks report.
    .filter((mixer) => !mixer.namedModules(mixer.path).some(([, module]) => cache.get(module) !== undefined));
  if (stateless.length > 0) throw new StatelessMixerError(stateless.map((m) => m.path), stateless.map((m) => m.constructor.name));
}

/** What makes `row` unusable, for the error: `check` as {@link unusableLogit} gives it. */
function describeUnusable(row: Float32Array, check: number): string {
  if (check === row.length) return `every logit is -Infinity (${row.length} tokens)`;
  return `${Number.isNaN(row[check]) ? 'NaN' : '+Infinity'} at token ${check}`;
}

/** A copy of `logits` with HF's repetition penalty applied to every id in `seen`. */
function penalize(logits: Float32Array, seen: readonly (readonly number[])[], penalty: number): Float32Array {
  const out = logits.slice();
  for (const id of new Set(seen.flat())) {
    const v = logits[id]!;
    out[id] = v > 0 ? v / penalty : v * penalty;
  }
  return out;
}

function endsWithStop(tokens: readonly number[], stop: GenerateOptions['stop']): boolean {
  if (stop === undefined) return false;
  return stop.some(
    (seq) => seq.length > 0 && seq.length <= tokens.length && seq.every((t, i) => tokens[tokens.length - seq.length + i] === t),
  );
}

function checkOptions(options: GenerateOptions, vocab: number, method: string): void {
  checkKeys(options, GENERATE_OPTION_KEYS, `${method} options`);
  const strategy = options.strategy;
  if (typeof strategy === 'object' && strategy !== null && (strategy.kind === 'greedy' || strategy.kind === 'sample')) {
    checkKeys(strategy, STRATEGY_KEYS[strategy.kind], `${method} options strategy (${strategy.kind})`);
  }
  const { maxNewTokens = DEFAULT_MAX_NEW_TOKENS, padTokenId } = options;
  if (!Number.isInteger(maxNewTokens) || maxNewTokens < 1) {
    throw new Error(`maxNewTokens must be a positive integer, got ${maxNewTokens}`);
  }
  for (const id of [options.eosTokenId ?? []].flat()) {
    if (!isTokenId(id, vocab)) throw new Error(`eosTokenId ${id} is not a token id of this model (vocabulary of ${vocab})`);
  }
  if (padTokenId !== undefined && !isTokenId(padTokenId, vocab)) {
    throw new Error(`padTokenId ${padTokenId} is not a token id of this model (vocabulary of ${vocab})`);
  }
  const { repetitionPenalty } = options;
  if (repetitionPenalty !== undefined && !(typeof repetitionPenalty === 'number' && repetitionPenalty > 0 && Number.isFinite(repetitionPenalty))) {
    throw new Error(`repetitionPenalty must be a positive number (1 for none), got ${repetitionPenalty}`);
  }
}

function checkPrompts(prompts: readonly (readonly number[])[], vocab: number, cache: GenerationCache): void {
  if (!Array.isArray(prompts) || prompts.length === 0 || !prompts.every(Array.isArray)) {
    throw new Error('promptIds must be a non-empty array of token id arrays, one per prompt ([[1, 2, 3], ...])');
  }
  if (cache.isDisposed) throw new Error('the cache passed to generate was disposed');
  if (cache.batchSize !== 0 && cache.batchSize !== prompts.length) {
    throw new Error(`the cache holds ${cache.batchSize} rows but ${prompts.length} prompts were given; continue every row at once`);
  }
  prompts.forEach((p, r) => {
    if (p.length === 0) throw new Error(`prompt ${r} is empty; every prompt needs at least one token`);
    const position = p.findIndex((id) => !isTokenId(id, vocab));
    if (position >= 0) throw new IdOutOfRangeError('promptIds', r, position, p[position]!, vocab, 'vocabulary');
  });
}

function isTokenId(id: number, vocab: number): boolean {
  return Number.isInteger(id) && id >= 0 && id < vocab;
}
