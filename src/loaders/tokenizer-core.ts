/**
 * The tokenizer class and its construction from a model's files, whatever reads them (a folder
 * in Node, a {@link ModelStorage} in the browser): @huggingface/transformers' tokenizer classes
 * fed with files Tessera read, so transformers.js never downloads or caches anything itself.
 * Browser-safe: no Node built-in is imported here.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { PreTrainedTokenizer } from '@huggingface/transformers';
import { checkKeys, type KeyList } from '../util/options.js';
import type { ModelStorage } from './storage/storage.js';
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

/** How tokenizer files are read: a file's text (undefined when absent), and its name for errors. */
export interface TokenizerFiles {
  read(file: string): Promise<string | undefined>;
  where(file: string): string;
}

/** {@link TokenizerFiles} over a {@link ModelStorage}. */
export function storageTokenizerFiles(storage: ModelStorage): TokenizerFiles {
  return {
    read: async (file) => {
      const bytes = await storage.read(file);
      return bytes === undefined ? undefined : new TextDecoder().decode(bytes);
    },
    where: (file) => `${storage.location}/${file}`,
  };
}

async function readJson(files: TokenizerFiles, file: string, required: boolean): Promise<Record<string, unknown> | undefined> {
  const text = await files.read(file);
  if (text === undefined) {
    if (!required) return undefined;
    throw new Error(
      `${files.where(file)} not found: the tokenizer needs tokenizer.json (the "fast" tokenizer file); only BERT-style ` +
        "vocab.txt folders can do without it. Save the tokenizer once with Python's AutoTokenizer.from_pretrained(...).save_pretrained(dir)",
    );
  }
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch (err) {
    throw new Error(`${files.where(file)}: invalid JSON (${(err as Error).message})`);
  }
}

/**
 * The transformers.js tokenizer of a model's files: `tokenizer.json` and `tokenizer_config.json`
 * (and optionally `special_tokens_map.json`), or a BERT-style `vocab.txt`. The class (BertTokenizer,
 * LlamaTokenizer ...) is chosen from `tokenizer_class`, as transformers does.
 */
export async function tokenizerFromFiles(files: TokenizerFiles): Promise<PreTrainedTokenizer> {
  const config = (await readJson(files, 'tokenizer_config.json', false)) ?? {};
  // Python merges special_tokens_map.json into the config; keys in tokenizer_config win.
  const special = (await readJson(files, 'special_tokens_map.json', false)) ?? {};
  const merged: Record<string, unknown> = { ...special, ...config };
  let tokenizerJson = await readJson(files, 'tokenizer.json', false);
  if (tokenizerJson === undefined) {
    // Older BERT-family repos have only vocab.txt: build the equivalent tokenizer.json.
    const vocab = await files.read('vocab.txt');
    if (vocab !== undefined && isWordPieceFolder(merged, await readJson(files, 'config.json', false))) {
      tokenizerJson = wordPieceTokenizerJson(vocab, merged, files.where('vocab.txt'));
      // BertTokenizer's defaults, which a folder without tokenizer_config.json relies on.
      merged.tokenizer_class ??= 'BertTokenizer';
      for (const [k, v] of Object.entries({ unk_token: '[UNK]', sep_token: '[SEP]', pad_token: '[PAD]', cls_token: '[CLS]', mask_token: '[MASK]' })) {
        merged[k] ??= v;
      }
    } else {
      tokenizerJson = (await readJson(files, 'tokenizer.json', true))!; // throws the explanatory error
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
return new Cls(tokenizerJson, merged);
}

/** A model's tokenizer; wraps a transformers.js tokenizer. */
export class Tokenizer {
  constructor(
    /** The underlying transformers.js tokenizer, for anything not wrapped here. */
    readonly inner: PreTrainedTokenizer,
    /** Where it was loaded from (a folder, a hub model, a URL). */
    readonly dir: string,
  ) {}

  /** Load from any {@link ModelStorage} (the files {@link tokenizerFromFiles} reads). */
  static async fromStorage(storage: ModelStorage): Promise<Tokenizer> {
    return new Tokenizer(await tokenizerFromFiles(storageTokenizerFiles(storage)), storage.location);
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
