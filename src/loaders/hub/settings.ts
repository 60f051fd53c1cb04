/**
 * Where the hub is, who we are and where the cache lives: the environment variables Python's
 * huggingface_hub reads, with the same precedence, so both ecosystems share one cache.
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { getHFHubCachePath } from '@huggingface/hub';

/** Options shared by everything that talks to the hub or its cache. */
export interface HubOptions {
  /** Branch, tag or commit hash. Default `main`. */
  revision?: string;
  /** Cache root. Default `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else `~/.cache/huggingface/hub`. */
  cacheDir?: string;
  /** Never touch the network. Default: true when `HF_HUB_OFFLINE` is 1/true/yes/on. */
  offline?: boolean;
  /** Access token for gated/private models. Default `$HF_TOKEN`, else the file `$HF_HOME/token`. */
  token?: string;
  /** Hub base URL. Default `$HF_ENDPOINT`, else `https://huggingface.co`. */
  endpoint?: string;
  /** Download progress on stderr. Default: only when stderr is a terminal. */
  progress?: boolean | ProgressSink;
  /** fetch implementation (proxies, tests). Default: the global fetch. */
  fetch?: typeof fetch;
}

/** Where a progress bar writes; `process.stderr` satisfies it. */
export interface ProgressSink {
  isTTY?: boolean;
  columns?: number;
  write(chunk: string): unknown;
}

export interface HubSettings {
  endpoint: string;
  token: string | undefined;
  cacheDir: string;
  offline: boolean;
  revision: string;
  fetch: typeof fetch;
}

const TRUE_VALUES = new Set(['1', 'true', 'yes', 'on']);

function envFlag(name: string): boolean {
  return TRUE_VALUES.has((process.env[name] ?? '').trim().toLowerCase());
}

function nonEmpty(v: string | undefined): string | undefined {
  const t = v?.trim();
  return t === undefined || t === '' ? undefined : t;
}

/** huggingface_hub's token file: `$HF_TOKEN_PATH`, else `$HF_HOME/token` (HF_HOME defaults to ~/.cache/huggingface). */
export function tokenFilePath(): string {
  const explicit = nonEmpty(process.env.HF_TOKEN_PATH);
  if (explicit !== undefined) return explicit;
  const home = nonEmpty(process.env.HF_HOME) ?? join(nonEmpty(process.env.XDG_CACHE_HOME) ?? join(homedir(), '.cache'), 'huggingface');
  return join(home, 'token');
}

function findToken(): string | undefined {
  const env = nonEmpty(process.env.HF_TOKEN) ?? nonEmpty(process.env.HUGGING_FACE_HUB_TOKEN);
  if (env !== undefined) return env;
  const file = tokenFilePath();
  return existsSync(file) ? nonEmpty(readFileSync(file, 'utf8')) : undefined;
}

/** Resolve options against the environment, read at call time so tests can change it. */
export function resolveHubSettings(opts: HubOptions = {}): HubSettings {
  // @huggingface/hub's getHFHubCachePath already follows Python's order (HF_HUB_CACHE,
  // HUGGINGFACE_HUB_CACHE, HF_HOME/hub, XDG_CACHE_HOME/huggingface/hub, ~/.cache/huggingface/hub).
  const cacheDir = opts.cacheDir ?? getHFHubCachePath();
  const endpoint = (opts.endpoint ?? nonEmpty(process.env.HF_ENDPOINT) ?? 'https://huggingface.co').replace(/\/+$/, '');
  return {
    endpoint,
    token: opts.token ?? findToken(),
    cacheDir,
    offline: opts.offline ?? envFlag('HF_HUB_OFFLINE'),
    revision: opts.revision ?? 'main',
    fetch: opts.fetch ?? fetch,
  };
}

/**
 * A fetch that sends the token only to the hub's own origin: redirects to a CDN (LFS files)
 * must not carry it, as huggingface_hub also ensures.
 */
export function authenticatedFetch(settings: HubSettings): typeof fetch {
  const origin = new URL(settings.endpoint).origin;
  return (input, init) => {
    const url = new URL(typeof input === 'string' || input instanceof URL ? input : input.url);
    if (settings.token === undefined || url.origin !== origin) return settings.fetch(input, init);
    const headers = new Headers(init?.headers);
    headers.set('Authorization', `Bearer ${settings.token}`);
    return settings.fetch(input, { ...init, headers });
  };
}
