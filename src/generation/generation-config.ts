/**
 * Text-generation defaults from a checkpoint's `generation_config.json` (or, when it has none,
 * its `config.json`), read the way Hugging Face's `GenerationConfig` reads them.
 */
import { checkKeys, type KeyList } from '../util/options.js';
import type { SamplingStrategy, Strategy } from './sampling.js';
import type { TextGenerateOptions } from './text-options.js';

/** HF's `top_k` when a config samples without naming one (`GenerationConfig` default). */
export const HF_DEFAULT_TOP_K = 50;

/**
 * Defaults for text generation from the raw contents of `generation_config.json` and
 * `config.json`. As in HF, `generation_config.json` is the whole story when present; only a model
 * without one takes these keys from `config.json`. Malformed values (a string token id, a
 * negative length, `do_sample: "yes"`) are errors naming the file and key; `null` means unset.
 *
 * Keys read: `eos_token_id`, `bos_token_id`, `pad_token_id`, `max_new_tokens`, `max_length`,
 * `do_sample`, `temperature`, `top_k`, `top_p`, `repetition_penalty`, `stop_strings`. Every other
 * key is left alone, as HF keeps unknown keys as plain attributes; HF's beam search,
 * `min_new_tokens`, `no_repeat_ngram_size` and the like are not applied.
 *
 * `do_sample: true` becomes a sampling strategy with HF's defaults for the keys the file leaves
 * out (temperature 1, top_k 50, top_p 1); `do_sample` false or absent is greedy, and the sampling
 * keys are then unused, as in HF.
 *
 * @param generationConfig `generation_config.json`, if the model has one.
 * @param config `config.json`.
 * @param source How to name the files in errors (e.g. the model folder).
 */
export function generationDefaults(
  generationConfig: Readonly<Record<string, unknown>> | undefined,
  config: Readonly<Record<string, unknown>> | undefined,
  source = 'the model folder',
): TextGenerateOptions {
  const raw = generationConfig ?? config;
  if (raw === undefined) return {};
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new Error(`${source}: ${generationConfig !== undefined ? 'generation_config.json' : 'config.json'} must hold a JSON object`);
  }
  const file = `${source}/${generationConfig !== undefined ? 'generation_config.json' : 'config.json'}`;
  const read = new KeyReader(raw, file);
  const out: TextGenerateOptions = {};
  const eos = read.tokenIds('eos_token_id');
  if (eos !== undefined) out.eosTokenId = eos;
  const bos = read.tokenId('bos_token_id');
  if (bos !== undefined) out.bosTokenId = bos;
  const pad = read.tokenId('pad_token_id');
  if (pad !== undefined) out.padTokenId = pad;
  const maxNew = read.positiveInteger('max_new_tokens');
  if (maxNew !== undefined) out.maxNewTokens = maxNew;
  const maxLength = read.positiveInteger('max_length');
  if (maxLength !== undefined) out.maxLength = maxLength;
  const penalty = read.number('repetition_penalty', (v) => v > 0, 'a positive number');
  if (penalty !== undefined) out.repetitionPenalty = penalty;
  const stop = read.strings('stop_strings');
  if (stop !== undefined) out.stop = stop;
  const temperature = read.number('temperature', (v) => v >= 0, 'a number ≥ 0');
  const topK = read.number('top_k', (v) => Number.isInteger(v) && v >= 0, 'an integer ≥ 0 (0: no top-k cut)');
  const topP = read.number('top_p', (v) => v > 0 && v <= 1, 'a number in (0, 1]');
  const doSample = read.boolean('do_sample');
  if (doSample === true) {
    if (temperature === 0) throw new Error(`${file}: temperature is 0 with do_sample true; sampling needs temperature > 0 (set do_sample false for greedy)`);
    const strategy: SamplingStrategy = { kind: 'sample', temperature: temperature ?? 1, topP: topP ?? 1 };
    const k = topK ?? HF_DEFAULT_TOP_K;
    if (k > 0) strategy.topK = k;
    out.strategy = strategy;
  } else if (doSample === false) {
    out.strategy = 'greedy' satisfies Strategy;
  }
  return out;
}

/** Reads one file's keys: absent and null are unset; anything else must have the right type. */
class KeyReader {
  constructor(
    private readonly raw: Readonly<Record<string, unknown>>,
    private readonly file: string,
  ) {}

  private value(key: string): unknown {
    const v = this.raw[key];
    return v === null ? undefined : v;
  }

  private fail(key: string, want: string): never {
    throw new Error(`${this.file}: ${key} must be ${want}, got ${JSON.stringify(this.raw[key])}`);
  }

  tokenId(key: string): number | undefined {
    const v = this.value(key);
    if (v === undefined) return undefined;
    if (!isId(v)) this.fail(key, 'a token id (an integer ≥ 0) or null');
    return v;
  }

  tokenIds(key: string): number | number[] | undefined {
    const v = this.value(key);
    if (v === undefined) return undefined;
    if (isId(v)) return v;
    if (Array.isArray(v) && v.length > 0 && v.every(isId)) return [...v];
    return this.fail(key, 'a token id (an integer ≥ 0), a non-empty list of token ids, or null');
  }

  positiveInteger(key: string): number | undefined {
    const v = this.value(key);
    if (v === undefined) return undefined;
    if (!(typeof v === 'number' && Number.isInteger(v) && v >= 1)) this.fail(key, 'a positive integer or null');
    return v;
  }

  number(key: string, ok: (v: number) => boolean, want: string): number | undefined {
    const v = this.value(key);
    if (v === undefined) return undefined;
    if (!(typeof v === 'number' && Number.isFinite(v) && ok(v))) this.fail(key, `${want} or null`);
    return v;
  }

  boolean(key: string): boolean | undefined {
    const v = this.value(key);
    if (v === undefined) return undefined;
    if (typeof v !== 'boolean') this.fail(key, 'true, false or null');
    return v;
  }

  strings(key: string): string[] | undefined {
    const v = this.value(key);
    if (v === undefined) return undefined;
    if (typeof v === 'string' && v.length > 0) return [v];
    if (Array.isArray(v) && v.length > 0 && v.every((s) => typeof s === 'string' && s.length > 0)) return [...(v as string[])];
    return this.fail(key, 'a non-empty string, a list of them, or null');
  }
}

function isId(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0;
}

/** Options of `lm.attachTokenizer`: where its text-generation defaults come from. */
export interface AttachTokenizerOptions {
  /** The contents of the model's `generation_config.json`; when given, `config` is not read (as HF). */
  generationConfig?: Readonly<Record<string, unknown>>;
  /** The contents of the model's `config.json`; default: the one the model was loaded from, if any. */
  config?: Readonly<Record<string, unknown>>;
  /** Defaults of your own, over those of the files. */
  defaults?: TextGenerateOptions;
}

const ATTACH_TOKENIZER_KEYS = { generationConfig: true, config: true, defaults: true } as const satisfies KeyList<AttachTokenizerOptions>;

/**
 * The defaults `lm.attachTokenizer` attaches: `options.defaults` over those of the files
 * ({@link generationDefaults}); `loadedConfig` is the config.json the model was loaded from.
 */
export function attachDefaults(
  options: AttachTokenizerOptions,
  loadedConfig: Readonly<Record<string, unknown>> | undefined,
  source: string | undefined,
): TextGenerateOptions {
  checkKeys(options, ATTACH_TOKENIZER_KEYS, 'attachTokenizer options');
  const files = generationDefaults(options.generationConfig, options.config ?? loadedConfig, source);
  const own = options.defaults ?? {};
  // maxNewTokens and maxLength are one setting: your own length replaces the files' either way.
  if (own.maxNewTokens !== undefined || own.maxLength !== undefined) {
    delete files.maxNewTokens;
    delete files.maxLength;
  }
  return { ...files, ...own };
}
