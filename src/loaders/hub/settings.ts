/**
 * Where the hub is, who we are and where the cache lives: the environment variables Python's
 * huggingface_hub reads, with the same precedence, so both ecosystems share one cache.
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { getHFHubCachePath } from '@huggingface/hub';
import type { KeyList } from '../../util/options.js';

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
  /**
   * Download progress: `true` on stderr, or on the given sink; a bar on a terminal, a plain line
   * every few seconds (and one per finished file) otherwise. Default: on stderr only when it is a
   * terminal. `false`: none.
   */
  progress?: boolean | ProgressSink;
  /** fetch implementation (proxies, tests). Default: the global fetch. */
  fetch?: typeof fetch;
  /**
   * Longest wait, in milliseconds, for a response's headers and then for each chunk of its body.
   * Default: `$HF_HUB_DOWNLOAD_TIMEOUT` seconds for file transfers and `$HF_HUB_ETAG_TIMEOUT`
   * seconds for metadata requests (huggingface_hub's variables), else 10 s for both.
   */
  timeoutMs?: number;
  /**
   * Extra attempts after a connection failure, a time-out, HTTP 408/429/5xx or an interrupted
   * transfer (which resumes where it stopped). Default 5, as huggingface_hub.
   */
  retries?: number;
  /** Wait before the first retry in ms; each later wait doubles, up to 8 s. Default 1000. */
  retryDelayMs?: number;
  /** Longest wait in ms for another process that is downloading the same file. Default 30 min. */
  lockTimeoutMs?: number;
}

/** The keys of {@link HubOptions}, for the key checks of everything that takes them. */
export const HUB_OPTION_KEYS = {
  revision: true,
  cacheDir: true,
  offline: true,
  token: true,
  endpoint: true,
  progress: true,
  fetch: true,
  timeoutMs: true,
  retries: true,
  retryDelayMs: true,
  lockTimeoutMs: true,
} satisfies KeyList<HubOptions>;

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
  metadataTimeoutMs: number;
  downloadTimeoutMs: number;
  retries: number;
  retryDelayMs: number;
  lockTimeoutMs: number;
}

/** A count or duration option within its range, else an error naming it. */
function numberOption(value: number | undefined, name: string, fallback: number, kind: 'count' | 'delay' | 'timeout'): number {
  if (value === undefined) return fallback;
  const ok =
    typeof value === 'number' &&
    Number.isFinite(value) &&
    (kind === 'timeout' ? value > 0 : value >= 0) &&
    (kind !== 'count' || Number.isInteger(value));
  if (!ok) {
    const want = { count: 'a non-negative integer', delay: 'a non-negative number of ms', timeout: 'a positive number of ms' }[kind];
    throw new Error(`hub option ${name} must be ${want}, got ${String(value)}`);
  }
  return value;
}

/** huggingface_hub's timeout variables are in seconds. */
function envSeconds(name: string): number | undefined {
  const raw = nonEmpty(process.env[name]);
  if (raw === undefined) return undefined;
  const seconds = Number(raw);
  if (!Number.isFinite(seconds) || seconds <= 0) throw new Error(`${name}=${raw} is not a positive number of seconds`);
  return seconds * 1000;
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
    metadataTimeoutMs: numberOption(opts.timeoutMs, 'timeoutMs', envSeconds('HF_HUB_ETAG_TIMEOUT') ?? 10_000, 'timeout'),
    downloadTimeoutMs: numberOption(opts.timeoutMs, 'timeoutMs', envSeconds('HF_HUB_DOWNLOAD_TIMEOUT') ?? 10_000, 'timeout'),
    retries: numberOption(opts.retries, 'retries', 5, 'count'),
    retryDelayMs: numberOption(opts.retryDelayMs, 'retryDelayMs', 1000, 'delay'),
    lockTimeoutMs: numberOption(opts.lockTimeoutMs, 'lockTimeoutMs', 30 * 60_000, 'timeout'),
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
