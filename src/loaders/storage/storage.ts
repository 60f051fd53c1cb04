/**
 * One small interface for reading a model's files, so the same loading code runs on Node's file
 * system and, in a browser, on `fetch` with the Cache API as the cache. Browser-safe: no Node
 * built-in is imported here.
 */

/** Read access to the files of one model: a folder, a hub repo at one commit, or a base URL. */
export interface ModelStorage {
  /** Where the files come from, named in errors: a folder, or a URL prefix (for the hub, `<endpoint>/<name>/resolve/<commit>`). */
  readonly location: string;
  /** The file's bytes, or `undefined` when the model has no such file; any other failure throws. */
  read(path: string): Promise<Uint8Array | undefined>;
}

/** A file's text (UTF-8), or undefined when absent. */
export async function readTextFile(storage: ModelStorage, path: string): Promise<string | undefined> {
  const bytes = await storage.read(path);
  return bytes === undefined ? undefined : new TextDecoder().decode(bytes);
}

/** A JSON file, or undefined when absent; invalid JSON is an error naming the file. */
export async function readJsonFile(storage: ModelStorage, path: string): Promise<Record<string, unknown> | undefined> {
  const text = await readTextFile(storage, path);
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch (err) {
    throw new Error(`${storage.location}/${path}: invalid JSON (${(err as Error).message})`);
  }
}

/** The part of the Cache API storages use: `caches.open(name)` in browsers, anything alike elsewhere. */
export type CacheLike = Pick<Cache, 'match' | 'put'>;

/** The browser's Cache API store `name`, or undefined where there is none (Node, insecure origins). */
export async function openBrowserCache(name: string): Promise<CacheLike | undefined> {
  const store = (globalThis as { caches?: CacheStorage }).caches;
  if (store === undefined) return undefined;
  try {
    return await store.open(name);
  } catch {
    return undefined; // e.g. opaque origins refuse the Cache API: load without a cache
  }
}
