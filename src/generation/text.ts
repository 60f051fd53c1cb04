/**
 * Text in, text out: generation on a causal LM with a tokenizer attached, its defaults, stop
 * strings and a text streamer. The token loop is {@link runSteps}; this file only encodes, decodes
 * and resolves options.
 */
import type { CausalLM } from '../models/causal-lm.js';
import { checkKeys, type KeyList } from '../util/options.js';
import { NoTokenizerError } from './errors.js';
import { DEFAULT_MAX_NEW_TOKENS, runSteps, type GenerateOptions } from './generate.js';
import type { Strategy } from './sampling.js';
import type { TextGenerateOptions, TextTokenizer } from './text-options.js';
import { RowText } from './text-stream.js';
import { yieldToEventLoop } from '../util/next-tick.js';

/** The keys of {@link TextGenerateOptions}; text generation rejects any other. */
export const TEXT_GENERATE_OPTION_KEYS = {
  maxNewTokens: true, maxLength: true, eosTokenId: true, bosTokenId: true, padTokenId: true, strategy: true, seed: true,
  repetitionPenalty: true, stop: true, addSpecialTokens: true, skipSpecialTokens: true,
} as const satisfies KeyList<TextGenerateOptions>;

interface Attachment {
  tokenizer: TextTokenizer;
  defaults: TextGenerateOptions;
}

// Beside the models, as model-source.ts keeps files: a model knows nothing of tokenizers.
const attachments = new WeakMap<CausalLM, Attachment>();

/**
 * Give `lm` a tokenizer and text-generation defaults (replacing any attached before), so
 * {@link generateText} and {@link streamText} accept text. `defaults` apply to every call that
 * leaves an option out; see `generationDefaults` to read them from a model's files.
 */
export function attachTokenizer(lm: CausalLM, tokenizer: TextTokenizer, defaults: TextGenerateOptions = {}): void {
  lm.assertNotDisposed('attachTokenizer');
  if (typeof tokenizer !== 'object' || tokenizer === null || typeof tokenizer.encodeText !== 'function' || typeof tokenizer.decode !== 'function') {
    throw new Error('attachTokenizer: the tokenizer must be an AutoTokenizer or have encodeText(text, { addSpecialTokens }) and decode(ids, { skipSpecialTokens })');
  }
  checkKeys(defaults, TEXT_GENERATE_OPTION_KEYS, 'text generation defaults');
  attachments.set(lm, { tokenizer, defaults: { ...defaults } });
}

/** The tokenizer attached to `lm`, if any. */
export function attachedTokenizer(lm: CausalLM): TextTokenizer | undefined {
  return attachments.get(lm)?.tokenizer;
}

/** The text-generation defaults attached with `lm`'s tokenizer (a copy; empty without one). */
export function textDefaults(lm: CausalLM): TextGenerateOptions {
  return { ...attachments.get(lm)?.defaults };
}

/**
 * Continue one text, or a batch of texts, and return the new text of each (without the prompt).
 * The prompts are encoded with the attached tokenizer and run as one left-padded batch (see
 * `generate`); each row's new ids are decoded without special tokens. A row stops at its end
 * token, at `maxNewTokens`, or as soon as its text contains a stop string, and its text then
 * ends just before the stop string.
 *
 * Throws {@link NoTokenizerError} when `lm` has no tokenizer attached.
 */
export function generateText(lm: CausalLM, prompt: string, options?: TextGenerateOptions): string;
export function generateText(lm: CausalLM, prompts: readonly string[], options?: TextGenerateOptions): string[];
export function generateText(lm: CausalLM, prompts: string | readonly string[], options?: TextGenerateOptions): string | string[];
export function generateText(lm: CausalLM, prompts: string | readonly string[], options: TextGenerateOptions = {}): string | string[] {
  const texts = typeof prompts === 'string' ? [prompts] : prompts;
  const run = prepare(lm, texts, options, 'generate');
  const steps = runSteps(lm, run.ids, run.options, 'generate', (r, token) => {
    run.rows[r]!.push(token);
    return run.rows[r]!.stopped;
  });
  while (steps.next().done !== true);
  const out = run.rows.map((row) => row.text);
  return typeof prompts === 'string' ? out[0]! : out;
}

/**
 * Stream the new text of one prompt as it is generated. Each piece is final text: a multibyte
 * character split over several tokens (an emoji as four byte tokens) comes whole, never as
 * U+FFFD, and text that might be the start of a stop string waits until it is not. The pieces
 * joined equal what {@link generateText} returns for the same options and seed, which is also
 * the generator's return value. Leaving the loop early frees every tensor of the call.
 *
 * The tokenizer and options are checked when called; model errors come from the iteration.
 */
export function streamText(lm: CausalLM, prompt: string, options: TextGenerateOptions = {}): AsyncGenerator<string, string> {
  if (typeof prompt !== 'string') {
    throw new Error('streamText takes one prompt string; for a batch call generate with an array of texts, or stream each prompt');
  }
  const run = prepare(lm, [prompt], options, 'streamText');
  return streamRow(lm, run);
}

async function* streamRow(lm: CausalLM, run: Prepared): AsyncGenerator<string, string> {
  const row = run.rows[0]!;
  let pending = '';
  const steps = runSteps(lm, run.ids, run.options, 'streamText', (_, token) => {
    pending += row.push(token);
    return row.stopped;
  });
  try {
    for (;;) {
      const next = steps.next();
      if (next.done) break;
      if (pending !== '') yield pending;
      pending = '';
      await yieldToEventLoop();
    }
    const rest = row.finish();
    if (rest !== '') yield rest;
    return row.text;
  } finally {
    steps.return([]);
  }
}

interface Prepared {
  ids: number[][];
  options: GenerateOptions;
  rows: RowText[];
}

/** Check the call, encode the prompts and resolve the options against the model's defaults. */
function prepare(lm: CausalLM, texts: readonly string[], options: TextGenerateOptions, method: string): Prepared {
  lm.assertNotDisposed(method);
  const attachment = attachments.get(lm);
  if (attachment === undefined) throw new NoTokenizerError(lm.label, method);
  checkKeys(options, TEXT_GENERATE_OPTION_KEYS, `${method} options`);
  if (!Array.isArray(texts) || texts.length === 0 || !texts.every((t) => typeof t === 'string')) {
    throw new Error(`${method}: prompts must be a string or a non-empty array of strings`);
  }
  const { tokenizer, defaults } = attachment;
  const explicit = Object.fromEntries(Object.entries(options ?? {}).filter(([, v]) => v !== undefined)) as TextGenerateOptions;
  const o: TextGenerateOptions = { ...defaults, ...explicit };
  const addSpecialTokens = o.addSpecialTokens ?? true;
  const skipSpecialTokens = o.skipSpecialTokens ?? true;
  const ids = texts.map((text, r) => {
    const encoded = tokenizer.encodeText(text, { addSpecialTokens });
    if (encoded.length > 0) return encoded;
    if (o.bosTokenId !== undefined) return [o.bosTokenId];
    throw new Error(`${method}: prompt ${r} (${JSON.stringify(text)}) encodes to no tokens and the model has no bosTokenId to start from`);
  });
  const stops = stopStrings(o.stop, method);
  const decode = (row: number[]): string => tokenizer.decode(row, { skipSpecialTokens });
  return {
    ids,
    rows: ids.map((prompt) => new RowText(decode, prompt, stops)),
    options: {
      maxNewTokens: newTokenBudget(explicit, defaults, Math.max(...ids.map((p) => p.length)), method),
      strategy: seeded(o.strategy, o.seed),
      ...(o.eosTokenId !== undefined && { eosTokenId: o.eosTokenId }),
      ...(o.padTokenId !== undefined && { padTokenId: o.padTokenId }),
      ...(o.repetitionPenalty !== undefined && { repetitionPenalty: o.repetitionPenalty }),
    },
  };
}

/**
 * New tokens per row: a call's own `maxNewTokens` or `maxLength` before the defaults', and within
 * each, `maxNewTokens` before `maxLength` (as HF). `maxLength` counts the longest prompt.
 */
function newTokenBudget(explicit: TextGenerateOptions, defaults: TextGenerateOptions, promptLength: number, method: string): number {
  for (const o of [explicit, defaults]) {
    if (o.maxNewTokens !== undefined) return o.maxNewTokens;
    if (o.maxLength !== undefined) {
      if (!Number.isInteger(o.maxLength) || o.maxLength < 1) throw new Error(`${method}: maxLength must be a positive integer, got ${o.maxLength}`);
      const budget = o.maxLength - promptLength;
      if (budget < 1) {
        throw new Error(
          `${method}: maxLength ${o.maxLength}${o === defaults ? " (the model's default, from max_length)" : ''} leaves no room for new tokens ` +
            `after a prompt of ${promptLength} tokens; pass maxNewTokens or a larger maxLength`,
        );
      }
      return budget;
    }
  }
  return DEFAULT_MAX_NEW_TOKENS;
}

/** `strategy` with `seed` applied when it samples (a seed does not change greedy picks). */
function seeded(strategy: Strategy | undefined, seed: number | undefined): Strategy {
  if (seed !== undefined && !Number.isSafeInteger(seed)) throw new Error(`seed must be an integer, got ${seed}`);
  if (seed === undefined || strategy === undefined || typeof strategy !== 'object' || strategy === null || strategy.kind !== 'sample') {
    return strategy ?? 'greedy';
  }
  return { ...strategy, seed };
}

function stopStrings(stop: TextGenerateOptions['stop'], method: string): string[] {
  if (stop === undefined) return [];
  const list = typeof stop === 'string' ? [stop] : stop;
  if (!Array.isArray(list) || !list.every((s) => typeof s === 'string' && s.length > 0)) {
    throw new Error(`${method}: stop must be a non-empty string or an array of them, got ${JSON.stringify(stop)}`);
  }
  return [...list];
}
