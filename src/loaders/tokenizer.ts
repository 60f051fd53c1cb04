/**
 * Tokenizers for Tessera models, backed by @huggingface/transformers' tokenizer classes and fed
 * from the same snapshot folders the weights come from (the Python-compatible cache), so
 * transformers.js never downloads or caches anything itself.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { PreTrainedTokenizer } from '@huggingface/transformers';
import { snapshotModel } from './hub/snapshot.js';
import { resolvePretrained } from './pretrained.js';
import { HUB_OPTION_KEYS, type HubOptions } from './hub/settings.js';
import { checkKeys, type KeyList } from '../util/options.js';
import { isWordPieceFolder, wordPieceTokenizerJson } from './wordpiece-vocab.js';

/** One input row: a text, or a pair of texts (the second may be null for a single text). */
export type TokenizerInput = string | readonly [string, string | null];

export interface EncodeOptions {
  /** Pad every row to the longest (`true`) or to `maxLength` (`'max_length'`). Default true. */
  padding?: boolean | 'max_length';
  /** Cut rows longer than `maxLength` (default: the tokenizer's model_max_length). Default false. */
  truncation?: boolean;
  maxLength?: number;
  /** Add [CLS]/[SEP], <s> ... as the model expects. Default true. */
  addSpecialTokens?: boolean;
}

/**
 * A tokenized batch. The three tensors are int32 `[batch, length]` and belong to the caller:
 * dispose them (or create them inside `tf.tidy`).
 */
export interface Encoding {
  inputIds: tf.Tensor2D;
  attentionMask: tf.Tensor2D;
  /** Segment ids (0 for the first text, 1 for the second); zeros for tokenizers without them. */
  tokenTypeIds: tf.Tensor2D;
  /** The same ids as plain arrays. */
  ids: number[][];
}

export interface DecodeOptions {
  /** Drop [CLS], [SEP], [PAD] and other special tokens. Default false. */
  skipSpecialTokens?: boolean;
}

const ENCODE_OPTION_KEYS = { padding: true, truncation: true, maxLength: true, addSpecialTokens: true } satisfies KeyList<EncodeOptions>;
const DECODE_OPTION_KEYS = { skipSpecialTokens: true } satisfies KeyList<DecodeOptions>;

async function readJson(dir: string, file: string, required: boolean): Promise<Record<string, unknown> | undefined> {
  let text: string;
  try {
    text = await readFile(join(dir, file), 'utf8');
  } catch {
    if (!required) return undefined;
    throw new Error(
      `${join(dir, file)} not found: the tokenizer needs tokenizer.json (the "fast" tokenizer file); only BERT-style ` +
        "vocab.txt folders can do without it. Save the tokenizer once with Python's AutoTokenizer.from_pretrained(...).save_pretrained(dir)",
    );
  }
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch (err) {
    throw new Error(`${join(dir, file)}: invalid JSON (${(err as Error).message})`);
  }
}

/** Tokenizer for a model folder or hub name; wraps a transformers.js tokenizer. */
export class AutoTokenizer {
  private constructor(
    /** The underlying transformers.js tokenizer, for anything not wrapped here. */
    readonly inner: PreTrainedTokenizer,
    /** Folder it was loaded from. */
    readonly dir: string,
  ) {}

  /**
   * Load from a folder with `tokenizer.json` and `tokenizer_config.json` (and optionally
   * `special_tokens_map.json`), e.g. a snapshot folder. The class (BertTokenizer, LlamaTokenizer
   * ...) is chosen from `tokenizer_class`, as transformers does.
   */
  static async fromDir(dir: string): Promise<AutoTokenizer> {
    const config = (await readJson(dir, 'tokenizer_config.json', false)) ?? {};
    // Python merges special_tokens_map.json into the config; keys in tokenizer_config win.
    const special = (await readJson(dir, 'special_tokens_map.json', false)) ?? {};
    const merged: Record<string, unknown> = { ...special, ...config };
    let tokenizerJson = await readJson(dir, 'tokenizer.json', false);
    if (tokenizerJson === undefined) {
      // Older BERT-family repos have only vocab.txt: build the equivalent tokenizer.json.
      const vocab = await readFile(join(dir, 'vocab.txt'), 'utf8').catch(() => undefined);
      if (vocab !== undefined && isWordPieceFolder(merged, await readJson(dir, 'config.json', false))) {
        tokenizerJson = wordPieceTokenizerJson(vocab, merged, join(dir, 'vocab.txt'));
        // BertTokenizer's defaults, which a folder without tokenizer_config.json relies on.
        merged.tokenizer_class ??= 'BertTokenizer';
        for (const [k, v] of Object.entries({ unk_token: '[UNK]', sep_token: '[SEP]', pad_token: '[PAD]', cls_token: '[CLS]', mask_token: '[MASK]' })) {
          merged[k] ??= v;
        }
      } else {
        tokenizerJson = (await readJson(dir, 'tokenizer.json', true))!; // throws the explanatory error
      }
    }
    // Imported lazily: transformers.js is large and only tokenizer users need it.
    const transformers = await import('@huggingface/transformers');
    const className = typeof merged.tokenizer_class === 'string' ? merged.tokenizer_class.replace(/Fast$/, '') : 'PreTrainedTokenizer';
    const candidate = (transformers as unknown as Record<string, unknown>)[className];
    const Cls =
      typeof candidate === 'function' && (candidate === transformers.PreTrainedTokenizer || candidate.prototype instanceof transformers.PreTrainedTokenizer)
        ? (candidate as typeof transformers.PreTrainedTokenizer)
        : transformers.PreTrainedTokenizer;
    return new AutoTokenizer(new Cls(tokenizerJson, merged), dir);
  }

  /**
   * Load by Hugging Face model name through the cache (downloading config and tokenizer files
   * only, not the weights, when they are missing). Same options and environment variables as
   * {@link snapshotModel}.
   */
  static async fromHfHub(name: string, opts: HubOptions = {}): Promise<AutoTokenizer> {
    checkKeys(opts, HUB_OPTION_KEYS, 'AutoTokenizer.fromHfHub options');
    return AutoTokenizer.fromDir(await snapshotModel(name, { ...opts, weights: false, tokenizer: true }));
  }

  /** A folder if `nameOrPath` is an existing directory, else a hub model name (tokenizer files only). */
  static async fromPretrained(nameOrPath: string, opts: HubOptions = {}): Promise<AutoTokenizer> {
    checkKeys(opts, HUB_OPTION_KEYS, 'AutoTokenizer.fromPretrained options');
    return AutoTokenizer.fromDir(await resolvePretrained(nameOrPath, { ...opts, weights: false, tokenizer: true }));
  }

  /** Encode a batch of texts and/or text pairs into int32 tensors ready for a model. */
  encode(texts: readonly TokenizerInput[], opts: EncodeOptions = {}): Encoding {
    checkKeys(opts, ENCODE_OPTION_KEYS, 'AutoTokenizer.encode options');
    if (texts.length === 0) throw new Error('encode: empty batch');
    const first = texts.map((t) => (typeof t === 'string' ? t : t[0]));
    const second = texts.map((t) => (typeof t === 'string' ? null : t[1]));
    const hasPairs = second.some((s) => s !== null);
    const out = this.inner._call(first, {
      text_pair: hasPairs ? (second as string[]) : null,
      padding: opts.padding ?? true,
      truncation: opts.truncation ?? null,
      max_length: opts.maxLength ?? null,
      add_special_tokens: opts.addSpecialTokens ?? true,
      return_tensor: false,
    }) as unknown as { input_ids: number[][]; attention_mask: number[][]; token_type_ids?: number[][] };

    const ids = out.input_ids.map((row) => row.map(Number));
    if (ids.some((r) => r.some((v) => !Number.isInteger(v)))) {
      throw new Error(`encode: the tokenizer in ${this.dir} has no pad token id; pass padding: false or set pad_token in tokenizer_config.json`);
    }
    const length = ids[0].length;
    if (ids.some((r) => r.length !== length)) {
      throw new Error(`encode: rows have different lengths (${ids.map((r) => r.length).join(', ')}); pass padding: true to batch them`);
    }
    const shape: [number, number] = [ids.length, length];
    const typeIds = out.token_type_ids?.map((row) => row.map(Number)) ?? ids.map((r) => r.map(() => 0));
    return {
      inputIds: tf.tensor2d(ids.flat(), shape, 'int32'),
      attentionMask: tf.tensor2d(out.attention_mask.flat().map(Number), shape, 'int32'),
      tokenTypeIds: tf.tensor2d(typeIds.flat(), shape, 'int32'),
      ids,
    };
  }

  /** Ids back to text: one row gives a string, a batch gives one string per row. */
  decode(ids: number[], opts?: DecodeOptions): string;
  decode(ids: number[][], opts?: DecodeOptions): string[];
  decode(ids: number[] | number[][], opts: DecodeOptions = {}): string | string[] {
    checkKeys(opts, DECODE_OPTION_KEYS, 'AutoTokenizer.decode options');
    const args = { skip_special_tokens: opts.skipSpecialTokens ?? false };
    if (ids.length > 0 && Array.isArray(ids[0])) return this.inner.batch_decode(ids as number[][], args);
    return this.inner.decode(ids as number[], args);
  }
}
