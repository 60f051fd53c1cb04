/**
 * `fromPretrained(nameOrPath)`: the folder/name decision Python's from_pretrained makes, shared by
 * the Auto* model classes and AutoTokenizer.
 */
import { stat } from 'node:fs/promises';
import { snapshotModel, type SnapshotOptions } from './hub/snapshot.js';
import { WEIGHT_LOAD_OPTION_KEYS, type WeightLoadOptions } from './assign-weights.js';
import { HUB_OPTION_KEYS } from './hub/settings.js';
import type { KeyList } from '../util/options.js';

/**
 * Options of `fromHfHub`/`fromPretrained`: revision, cache, offline, token, endpoint, progress
 * ..., and `allowNonFinite` (load weights holding NaN or ±Infinity; off by default).
 */
export type HubLoadOptions = Omit<SnapshotOptions, 'weights' | 'tokenizer'> & WeightLoadOptions;

/** The keys of {@link HubLoadOptions}, for the loaders' key checks. */
export const HUB_LOAD_OPTION_KEYS = { ...HUB_OPTION_KEYS, ...WEIGHT_LOAD_OPTION_KEYS, refresh: true } satisfies KeyList<HubLoadOptions>;

async function isDirectory(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isDirectory();
  } catch {
    return false;
  }
}

/**
 * An existing folder is used as is; anything else is a hub model name, fetched through the cache.
 * A string that is clearly a path (starts with `.`, `/` or `~`, or has more than one `/`) but does
 * not exist is an error rather than a hub lookup.
 */
export async function resolvePretrained(nameOrPath: string, opts: SnapshotOptions = {}): Promise<string> {
  if (await isDirectory(nameOrPath)) return nameOrPath;
  if (/^[.~/]/.test(nameOrPath) || nameOrPath.split('/').length > 2 || nameOrPath.includes('\\')) {
    throw new Error(`'${nameOrPath}' is neither an existing folder nor a Hugging Face model name ('org/name')`);
  }
  return snapshotModel(nameOrPath, opts);
}
