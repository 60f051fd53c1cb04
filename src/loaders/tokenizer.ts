/**
 * Tokenizers for Tessera models, backed by @huggingface/transformers' tokenizer classes and fed
 * from the same snapshot folders the weights come from (the Python-compatible cache), so
 * transformers.js never downloads or caches anything itself. The class and the file handling
 * are in tokenizer-core.ts (shared with the browser); this file adds folders and hub names.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { snapshotModel } from './hub/snapshot.js';
import { resolvePretrained } from './pretrained.js';
import { HUB_OPTION_KEYS, type HubOptions } from './hub/settings.js';
import { checkKeys } from '../util/options.js';
import { Tokenizer, tokenizerFromFiles } from './tokenizer-core.js';

export type { TokenizerInput, EncodeOptions, Encoding, DecodeOptions } from './tokenizer-core.js';

/** Tokenizer for a model folder or hub name; wraps a transformers.js tokenizer. */
export class AutoTokenizer extends Tokenizer {
  /**
   * Load from a folder with `tokenizer.json` and `tokenizer_config.json` (and optionally
   * `special_tokens_map.json`), e.g. a snapshot folder. The class (BertTokenizer, LlamaTokenizer
   * ...) is chosen from `tokenizer_class`, as transformers does.
   */
  static async fromDir(dir: string): Promise<AutoTokenizer> {
    const files = {
      read: (file: string) => readFile(join(dir, file), 'utf8').catch(() => undefined),
      where: (file: string) => join(dir, file),
    };
    return new AutoTokenizer(await tokenizerFromFiles(files), dir);
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
}
