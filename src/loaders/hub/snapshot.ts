/**
 * Model name -> local snapshot folder, like Python's `snapshot_download` restricted to the files
 * a model load needs, sharing huggingface_hub's cache (see cache-layout.ts).
 */
import { readFile } from 'node:fs/promises';
import { HubApiError, modelInfo } from '@huggingface/hub';
import { RepoCache } from './cache-layout.js';
import { downloadToCache, fetchFileMetadata, type TransferContext } from './download.js';
import { HubConnectionError, HubError, OfflineCacheMissError, httpError } from './errors.js';
import { TOKENIZER_FILES, missingFromSnapshot, pickWeights, shardsOf, WEIGHT_CANDIDATES, type FileWants } from './file-selection.js';
import { fetchWithPolicy, type RequestPolicy } from './http.js';
import { isCommitHash, validateRepoPath, validateRevision } from './names.js';
import { ProgressBar } from './progress.js';
import { authenticatedFetch, HUB_OPTION_KEYS, resolveHubSettings, type HubOptions, type HubSettings } from './settings.js';
import { checkKeys, type KeyList } from '../../util/options.js';

/** Options of {@link snapshotModel}. */
export interface SnapshotOptions extends HubOptions {
  /** Fetch the weights (default true); false for a tokenizer-only load. */
  weights?: boolean;
  /** Fetch tokenizer files when the repo has them (default true). */
  tokenizer?: boolean;
  /**
   * Ask the hub what a branch/tag points to even when the cache already has a complete snapshot
   * for it. Default false: a complete cached snapshot is used with no network request.
   */
  refresh?: boolean;
}

const SNAPSHOT_OPTION_KEYS = { ...HUB_OPTION_KEYS, weights: true, tokenizer: true, refresh: true } satisfies KeyList<SnapshotOptions>;

/**
 * Make the files needed to load `name` available in the Hugging Face cache and return the
 * snapshot folder (`<cache>/models--org--name/snapshots/<commit>`). Fetches `config.json` (and
 * `generation_config.json` where the repo has one), then
 * `model.safetensors` or its index and shards (else `pytorch_model.bin` or its index and
 * shards), and the tokenizer files the repo has.
 *
 * With a branch or tag (default `main`) a complete cached snapshot found through `refs/` is used
 * without contacting the hub; a commit hash is used directly. Offline (`offline: true` or
 * `HF_HUB_OFFLINE=1`) only the cache is read.
 *
 * @example
 * const dir = await snapshotModel('state-spaces/mamba-130m-hf', { revision: 'main' });
 */
export async function snapshotModel(name: string, opts: SnapshotOptions = {}): Promise<string> {
  checkKeys(opts, SNAPSHOT_OPTION_KEYS, 'snapshotModel options');
  const settings = resolveHubSettings(opts);
  // Names become URLs and cache paths: refuse unsafe ones before either is made.
  const cache = new RepoCache(settings.cacheDir, name);
  validateRevision(settings.revision);
  const wants: FileWants = { weights: opts.weights ?? true, tokenizer: opts.tokenizer ?? true };
  const revision = settings.revision;

  const cachedCommit = await cache.resolveLocal(revision);
  let cachedMissing: string[] | undefined;
  if (cachedCommit !== undefined) {
    cachedMissing = await missingFromSnapshot(cache.snapshotDir(cachedCommit), wants, (p) => cache.hasFile(cachedCommit, p));
    if (cachedMissing.length === 0 && (settings.offline || opts.refresh !== true)) return cache.snapshotDir(cachedCommit);
    if (settings.offline) {
      throw new OfflineCacheMissError(
        `model '${name}' (revision '${revision}') is only partly in the cache at ${cache.snapshotDir(cachedCommit)}: missing ${cachedMissing.join('; ')}. ` +
          'Offline mode (HF_HUB_OFFLINE=1 or { offline: true }) forbids downloading them; go online once to complete it',
      );
    }
  }
  if (settings.offline) {
    throw new OfflineCacheMissError(
      `model '${name}' (revision '${revision}') is not in the cache: looked for ${isCommitHash(revision) ? cache.snapshotDir(revision) : cache.refPath(revision)} ` +
        `under ${settings.cacheDir}. Offline mode (HF_HUB_OFFLINE=1 or { offline: true }) forbids downloading it; ` +
        'unset HF_HUB_OFFLINE to download, or point HF_HUB_CACHE/HF_HOME at the cache that has it',
    );
  }
  try {
    return await download(name, cache, settings, wants, opts);
  } catch (err) {
    // As huggingface_hub does: when the hub is unreachable, a complete cached copy is good enough.
    if (err instanceof HubConnectionError && cachedCommit !== undefined && cachedMissing?.length === 0) {
      return cache.snapshotDir(cachedCommit);
    }
    throw err;
  }
}

async function download(name: string, cache: RepoCache, settings: HubSettings, wants: FileWants, opts: SnapshotOptions): Promise<string> {
  const authed = authenticatedFetch(settings);
  const policy = (timeoutMs: number): RequestPolicy => ({ fetch: authed, timeoutMs, retries: settings.retries, retryDelayMs: settings.retryDelayMs });
  const metadata = policy(settings.metadataTimeoutMs);
  const { commit, files } = await repoListing(name, settings, fetchWithPolicy(metadata, `model '${name}'`));
  await cache.writeRef(settings.revision, commit);

  const ctx: TransferContext = {
    name,
    endpoint: settings.endpoint,
    metadata,
    transfer: policy(settings.downloadTimeoutMs),
    progress: ProgressBar.sinkFor(opts.progress),
    lockTimeoutMs: settings.lockTimeoutMs,
  };
  const fetchOne = async (path: string): Promise<string> => {
    validateRepoPath(path);
    if (!files.has(path)) {
      throw new HubError(`model '${name}' at revision '${settings.revision}' on ${settings.endpoint} has no file '${path}' (named by its shard index)`);
    }
    if (await cache.hasFile(commit, path)) return cache.pointerPath(commit, path);
    const meta = await fetchFileMetadata(ctx, commit, path);
    return downloadToCache(ctx, cache, commit, path, meta);
  };

  if (!files.has('config.json')) {
    throw new HubError(`model '${name}' at revision '${settings.revision}' on ${settings.endpoint} has no config.json, so Tessera cannot tell its architecture`);
  }
  await fetchOne('config.json');
  // Generation defaults (eos, max length, sampling) live beside config.json; small and optional.
  if (files.has('generation_config.json')) await fetchOne('generation_config.json');
  if (wants.weights) {
    const weights = pickWeights(files);
    if (weights === undefined) {
      throw new HubError(
        `model '${name}' at revision '${settings.revision}' has no weights Tessera can load (looked for ${WEIGHT_CANDIDATES.join(', ')}); ` +
          `it has: ${[...files].slice(0, 30).join(', ')}`,
      );
    }
    const local = await fetchOne(weights);
    if (weights.endsWith('.index.json')) {
      for (const shard of shardsOf(await readFile(local, 'utf8'), weights)) await fetchOne(shard);
    }
  }
  if (wants.tokenizer) {
    for (const f of TOKENIZER_FILES) if (files.has(f)) await fetchOne(f);
  }
  return cache.snapshotDir(commit);
}

/** The commit a revision points to and the repo's file list, from the model-info API. */
async function repoListing(name: string, settings: HubSettings, fetchApi: typeof fetch): Promise<{ commit: string; files: Set<string> }> {
  let info: { sha?: string; filePaths?: string[] };
  try {
    info = await modelInfo({
      name,
      revision: settings.revision,
      hubUrl: settings.endpoint,
      fetch: fetchApi,
      additionalFields: ['sha', 'filePaths'],
    });
  } catch (err) {
    if (err instanceof HubApiError) {
      const detail = err.data !== undefined && typeof err.data.error === 'string' ? err.data.error : '';
      throw httpError(err.statusCode, name, settings.endpoint, err.statusCode === 404 ? `no such model or revision '${settings.revision}'` : '', detail);
    }
    const hint = 'Check the network or HF_ENDPOINT, or use the cache offline (HF_HUB_OFFLINE=1)';
    if (err instanceof HubConnectionError) {
      err.message += `. ${hint}`;
      throw err;
    }
    throw new HubConnectionError(`could not reach ${settings.endpoint} for model '${name}': ${(err as Error).message}. ${hint}`);
  }
  if (typeof info.sha !== 'string' || !isCommitHash(info.sha)) {
    throw new HubError(`${settings.endpoint} returned no commit hash for model '${name}' at revision '${settings.revision}'`);
  }
  return { commit: info.sha, files: new Set(info.filePaths ?? []) };
}
