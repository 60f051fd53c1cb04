/**
 * What every pipeline does before its task: check the load options, find the model folder (an
 * existing folder as is, else a hub name fetched through the cache with its tokenizer files) and
 * load the tokenizer from it.
 */
import { AutoTokenizer } from '../loaders/tokenizer.js';
import type { WeightLoadOptions } from '../loaders/assign-weights.js';
import { HUB_LOAD_OPTION_KEYS, resolvePretrained, type HubLoadOptions } from '../loaders/pretrained.js';
import { checkKeys, type KeyList } from '../util/options.js';

/**
 * Options of `pipeline(task, nameOrDir, options)`: the hub options of `fromHfHub` (revision,
 * cacheDir, offline, token, endpoint, progress, ...), used only when `nameOrDir` is a hub name,
 * and the model load options `allowNonFinite` and `dtype` (see {@link WeightLoadOptions}).
 */
export type PipelineOptions = HubLoadOptions;

/** The keys of {@link PipelineOptions} (those of `fromHfHub`); any other is an `UnknownKeyError`. */
export const PIPELINE_OPTION_KEYS = HUB_LOAD_OPTION_KEYS satisfies KeyList<PipelineOptions>;

/** The model folder of a pipeline of `task`. */
export interface PipelineSource {
  dir: string;
  /** What the model loaders take from the pipeline's options. */
  load: WeightLoadOptions;
  /** The folder's tokenizer (loaded once the pipeline knows the model suits its task). */
  tokenizer(): Promise<AutoTokenizer>;
}

/** Check `options` and resolve `nameOrDir` to a folder (fetching a hub name with its tokenizer files). */
export async function pipelineSource(task: string, nameOrDir: string, options: PipelineOptions): Promise<PipelineSource> {
  checkKeys(options, PIPELINE_OPTION_KEYS, `pipeline('${task}') options`);
  if (typeof nameOrDir !== 'string' || nameOrDir === '') {
    throw new Error(`pipeline('${task}'): nameOrDir must be a model folder or a hub name ('org/name'), got ${JSON.stringify(nameOrDir)}`);
  }
  const { allowNonFinite, dtype, ...hub } = options;
  const dir = await resolvePretrained(nameOrDir, { ...hub, weights: true, tokenizer: true });
  const load: WeightLoadOptions = {};
  if (allowNonFinite !== undefined) load.allowNonFinite = allowNonFinite;
  if (dtype !== undefined) load.dtype = dtype;
  return { dir, load, tokenizer: () => AutoTokenizer.fromDir(dir) };
}

/** Throw unless `value` is a positive integer; `what` names the option. */
export function checkPositiveInteger(value: unknown, what: string): void {
  if (value !== undefined && !(Number.isInteger(value) && (value as number) > 0)) {
    throw new Error(`${what} must be a positive integer, got ${JSON.stringify(value)}`);
  }
}

/**
 * The texts of a pipeline call as a list, and whether one text (not a list) was given. An empty
 * list, or anything but strings, is an error naming the pipeline.
 */
export function textList(input: unknown, task: string): { texts: string[]; single: boolean } {
  if (typeof input === 'string') return { texts: [input], single: true };
  if (!Array.isArray(input) || input.length === 0 || input.some((t) => typeof t !== 'string')) {
    throw new Error(`${task}: expected a text or a non-empty array of texts, got ${Array.isArray(input) ? `an array of ${input.length} (${input.map((t) => typeof t).join(', ')})` : typeof input}`);
  }
  return { texts: input as string[], single: false };
}
