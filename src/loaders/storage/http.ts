/**
 * {@link ModelStorage} over HTTP: the Hugging Face hub (or a stand-in speaking its protocol) and
 * plain base URLs, cached with the Cache API. Browser-safe (it needs only `fetch`).
 *
 * The hub's rules are Node's: a branch or tag is resolved to a commit once and the files are read
 * at that commit, so one load never mixes revisions; a branch already resolved in the cache is
 * used without asking the hub again unless `refresh` is set; offline only the cache is read, and
 * when the hub cannot be reached a cached resolution is used.
 */
import { HubConnectionError, HubError, OfflineCacheMissError, httpError } from '../hub/errors.js';
import { checkKeys, type KeyList } from '../../util/options.js';
import { openBrowserCache, type CacheLike, type ModelStorage } from './storage.js';

/** The hub's default endpoint. */
export const DEFAULT_HUB_ENDPOINT = 'https://huggingface.co';
/** The Cache API store Tessera uses unless told otherwise. */
export const DEFAULT_CACHE_NAME = 'tessera-models';

/** Options of {@link hubStorage} and {@link urlStorage}. */
export interface HttpStorageOptions {
  /** Cache for downloaded files: a Cache API store, `false` for none. Default: `caches.open('tessera-models')` where the Cache API exists. */
  cache?: CacheLike | false;
  /** Read only the cache; a file it lacks is an {@link OfflineCacheMissError}. Default false. */
  offline?: boolean;
  /** The fetch to use (default: the global one). */
  fetch?: typeof fetch;
}

/** Options of {@link hubStorage}. */
export interface HubStorageOptions extends HttpStorageOptions {
  /** Branch, tag or commit hash. Default `main`. */
  revision?: string;
  /** The hub's address. Default `https://huggingface.co`. */
  endpoint?: string;
  /** Access token for gated or private models (sent to the hub only, never to its CDN). */
  token?: string;
  /** Ask the hub what a branch or tag points to even when the cache already knows. Default false. */
  refresh?: boolean;
}

const HTTP_OPTION_KEYS = { cache: true, offline: true, fetch: true } satisfies KeyList<HttpStorageOptions>;
const HUB_STORAGE_OPTION_KEYS = { ...HTTP_OPTION_KEYS, revision: true, endpoint: true, token: true, refresh: true } satisfies KeyList<HubStorageOptions>;

const COMMIT = /^[0-9a-f]{40}$/;
// The hub's own rule for repo ids: one optional namespace, letters, digits, '-', '_', '.'.
const REPO_NAME = /^(?:[A-Za-z0-9][A-Za-z0-9._-]*\/)?[A-Za-z0-9][A-Za-z0-9._-]*$/;

async function cacheFor(option: CacheLike | false | undefined): Promise<CacheLike | undefined> {
  if (option === false) return undefined;
  return option ?? openBrowserCache(DEFAULT_CACHE_NAME);
}

/**
 * A repo-relative file path: no empty, '.' or '..' segment, no backslash, and none of the
 * characters a URL gives meaning to (a scheme's ':', '%' escapes such as '%2e%2e', '?', '#') or
 * control characters, so that the URL made from it stays under the storage's base.
 */
function checkFilePath(path: string, location: string): void {
  // eslint-disable-next-line no-control-regex
  if (path === '' || path.startsWith('/') || /[\\:%?#\u0000-\u001f]/.test(path) || path.split('/').some((s) => s === '' || s === '..' || s === '.')) {
    throw new Error(`${location}: '${path}' is not a plain relative file path`);
  }
}

/** The URL of `path` under `base` (ends with '/'), each segment encoded. */
function fileUrl(base: string, path: string): string {
  return `${base}${path.split('/').map(encodeURIComponent).join('/')}`;
}

/** Where a commit-pinned file's absence is remembered, so offline loads know an optional file is not there. */
const missingKey = (url: string): string => `${url}?tessera-missing`;

/**
 * The files of hub model `name` at `options.revision`, read over HTTP and kept in the Cache API.
 * Resolves the revision to a commit first (see the module notes for cache and offline rules).
 *
 * @example
 * const storage = await hubStorage('org/tiny-llama', { revision: 'main' });
 */
export async function hubStorage(name: string, options: HubStorageOptions = {}): Promise<ModelStorage> {
  checkKeys(options, HUB_STORAGE_OPTION_KEYS, 'hubStorage options');
  if (!REPO_NAME.test(name) || name.includes('..')) {
    throw new Error(`'${name}' is not a Hugging Face model name ('org/name' of letters, digits, '-', '_' and '.')`);
  }
  const endpoint = (options.endpoint ?? DEFAULT_HUB_ENDPOINT).replace(/\/+$/, '');
  const revision = options.revision ?? 'main';
  if (revision === '' || revision.includes('..')) throw new Error(`revision '${revision}' is not a branch, tag or commit hash`);
  const doFetch = options.fetch ?? globalThis.fetch.bind(globalThis);
  const cache = await cacheFor(options.cache);
  const offline = options.offline === true;
  const auth: RequestInit = options.token === undefined ? {} : { headers: { Authorization: `Bearer ${options.token}` } };

  // The revision's commit, remembered in the cache under the model-info URL, as Node keeps refs/.
  const refUrl = `${endpoint}/api/models/${name}/revision/${encodeURIComponent(revision)}`;
  const cachedCommit = async (): Promise<string | undefined> => {
    const hit = await cache?.match(refUrl);
    const sha = hit === undefined ? undefined : ((await hit.json()) as { sha?: unknown }).sha;
    return typeof sha === 'string' && COMMIT.test(sha) ? sha : undefined;
  };
  let commit: string | undefined = COMMIT.test(revision) ? revision : undefined;
  if (commit === undefined && (offline || options.refresh !== true)) commit = await cachedCommit();
  if (commit === undefined && offline) {
    throw new OfflineCacheMissError(
      `model '${name}' (revision '${revision}') is not in the browser cache: offline mode forbids asking ${endpoint} which commit it is; go online once to load it`,
    );
  }
  if (commit === undefined) {
    let response: Response;
    try {
      response = await doFetch(refUrl, auth);
    } catch (err) {
      const fallback = await cachedCommit();
      if (fallback === undefined) {
        throw new HubConnectionError(`could not reach ${endpoint} for model '${name}': ${(err as Error).message}. Check the network or the endpoint, or load offline from the cache`);
      }
      response = new Response(JSON.stringify({ sha: fallback }));
    }
    if (!response.ok) throw httpError(response.status, name, endpoint, response.status === 404 ? `no such model or revision '${revision}'` : '');
    const body = (await response.json()) as { sha?: unknown };
    if (typeof body.sha !== 'string' || !COMMIT.test(body.sha)) throw new HubError(`${endpoint} returned no commit hash for model '${name}' at revision '${revision}'`);
    commit = body.sha;
    await cache?.put(refUrl, new Response(JSON.stringify({ sha: commit }), { headers: { 'Content-Type': 'application/json' } }));
  }
  const pinned = commit;
  // The files' URL prefix: `${location}/${path}` in an error is the URL that was read.
  const location = `${endpoint}/${name}/resolve/${pinned}`;
  return {
    location,
    async read(path) {
      checkFilePath(path, location);
      const url = fileUrl(`${location}/`, path);
      return readThroughCache(url, { cache, offline, immutable: true, fetch: doFetch, init: auth, what: `model '${name}' file '${path}'`, endpoint, name });
    },
  };
}

/**
 * The files under a base URL (`<base>/config.json`, ...), e.g. a model folder served beside the
 * page. A 404 reads as a missing file. Unlike the hub's commit-pinned files, what a URL serves
 * can change: each file is fetched (the browser's HTTP cache revalidates it) and its copy in the
 * Cache API is used only offline or when the server cannot be reached.
 */
export async function urlStorage(baseUrl: string, options: HttpStorageOptions = {}): Promise<ModelStorage> {
  checkKeys(options, HTTP_OPTION_KEYS, 'urlStorage options');
  const base = baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`;
  const cache = await cacheFor(options.cache);
  const doFetch = options.fetch ?? globalThis.fetch.bind(globalThis);
  return {
    location: base.slice(0, -1),
    async read(path) {
      checkFilePath(path, base);
      const url = fileUrl(new URL(base, globalThis.location?.href).href, path);
      return readThroughCache(url, { cache, offline: options.offline === true, immutable: false, fetch: doFetch, init: {}, what: `file '${path}'`, endpoint: base, name: base });
    },
  };
}

interface ReadContext {
  cache: CacheLike | undefined;
  offline: boolean;
  /** The URL's bytes never change (a commit-pinned hub file): a cached copy is used without asking. */
  immutable: boolean;
  fetch: typeof fetch;
  init: RequestInit;
  what: string;
  endpoint: string;
  name: string;
}

/** A file by URL, through the cache (see {@link ReadContext.immutable}); a 404 is undefined. */
async function readThroughCache(url: string, ctx: ReadContext): Promise<Uint8Array | undefined> {
  const cached = async (): Promise<Uint8Array | undefined> => {
    const hit = await ctx.cache?.match(url);
    return hit === undefined ? undefined : new Uint8Array(await hit.arrayBuffer());
  };
  if (ctx.immutable || ctx.offline) {
    const hit = await cached();
    if (hit !== undefined) return hit;
    // A commit-pinned file the hub said it lacks stays lacking: no request, and offline no error.
    if (ctx.immutable && (await ctx.cache?.match(missingKey(url))) !== undefined) return undefined;
  }
  if (ctx.offline) throw new OfflineCacheMissError(`${ctx.what} is not in the browser cache and offline mode forbids fetching ${url}`);
  let response: Response;
  try {
    response = await ctx.fetch(url, ctx.init);
  } catch (err) {
    const hit = ctx.immutable ? undefined : await cached();
    if (hit !== undefined) return hit;
    throw new HubConnectionError(`could not fetch ${ctx.what} from ${url}: ${(err as Error).message}`);
  }
  if (response.status === 404) {
    if (ctx.immutable) await ctx.cache?.put(missingKey(url), new Response(new Uint8Array(0)));
    return undefined;
  }
  if (!response.ok) throw httpError(response.status, ctx.name, ctx.endpoint, ctx.what);
  const bytes = new Uint8Array(await response.arrayBuffer());
  // Stored only once whole: a cut transfer throws above and leaves no partial entry.
  await ctx.cache?.put(url, new Response(bytes, { headers: { 'Content-Type': 'application/octet-stream' } }));
  return bytes;
}
