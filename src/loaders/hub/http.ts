/**
 * Every request to the hub goes through here: a time limit for the response's headers and for
 * each chunk of its body (a stalled or trickling server fails instead of hanging for Node's
 * default five minutes), and retries with doubling waits after connection failures, time-outs
 * and the statuses huggingface_hub also retries (429 and 5xx).
 */
import { HubConnectionError } from './errors.js';

/** How patiently to talk to the hub. */
export interface RequestPolicy {
  fetch: typeof fetch;
  /** Longest wait for the response headers, and then for each chunk of the body. */
  timeoutMs: number;
  /** Extra attempts after a failure that may pass. */
  retries: number;
  /** The first wait before a retry; each later one doubles, up to {@link MAX_RETRY_DELAY_MS}. */
  retryDelayMs: number;
}

/** The hub stopped answering for longer than the policy's time limit. */
export class HubTimeoutError extends HubConnectionError {
  override name = 'HubTimeoutError';
}

/** huggingface_hub's http_backoff waits at most 8 s between attempts. */
export const MAX_RETRY_DELAY_MS = 8000;
const RETRY_STATUSES = new Set([408, 429, 500, 502, 503, 504]);

/** Whether a response status is worth another attempt. */
export function isRetryableStatus(status: number): boolean {
  return RETRY_STATUSES.has(status);
}

/** The wait before retry number `attempt` (0-based): doubling, or the server's Retry-After. */
export function retryDelay(policy: RequestPolicy, attempt: number, retryAfter?: string | null): number {
  const seconds = retryAfter === null || retryAfter === undefined ? NaN : Number(retryAfter);
  if (Number.isFinite(seconds) && seconds >= 0) return Math.min(seconds * 1000, MAX_RETRY_DELAY_MS);
  return Math.min(policy.retryDelayMs * 2 ** attempt, MAX_RETRY_DELAY_MS);
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * One fetch under the policy's time limits, no retries: rejects with {@link HubTimeoutError} when
 * the headers do not arrive in time; the returned body errors the same way when it stalls.
 */
export async function timedFetch(policy: RequestPolicy, url: string, init: RequestInit = {}): Promise<Response> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new HubTimeoutError(`${url}: no response within ${policy.timeoutMs} ms`)), policy.timeoutMs);
  let res: Response;
  try {
    res = await policy.fetch(url, { ...init, signal: controller.signal });
  } catch (err) {
    throw controller.signal.aborted ? controller.signal.reason : err;
  } finally {
    clearTimeout(timer);
  }
  if (res.body === null) return res;
  const reader = res.body.getReader();
  const body = new ReadableStream<Uint8Array>({
    async pull(out) {
      let idle: NodeJS.Timeout | undefined;
      const stalled = new Promise<never>((_, reject) => {
        idle = setTimeout(() => {
          const err = new HubTimeoutError(`${url}: no data for ${policy.timeoutMs} ms`);
          controller.abort(err);
          reject(err);
        }, policy.timeoutMs);
      });
      try {
        const { done, value } = await Promise.race([reader.read(), stalled]);
        if (done) out.close();
        else out.enqueue(value);
      } finally {
        clearTimeout(idle);
      }
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  });
  return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
}

/**
 * {@link timedFetch} with retries: connection errors, time-outs and retryable statuses are tried
 * again after a growing wait; the last failure is returned (a response) or thrown (an error).
 * @param what names what was asked for in errors, e.g. "file 'config.json' of model 'org/name'".
 */
export async function requestWithRetries(policy: RequestPolicy, url: string, init: RequestInit, what: string): Promise<Response> {
  for (let attempt = 0; ; attempt++) {
    let retryAfter: string | null = null;
    try {
      const res = await timedFetch(policy, url, init);
      if (!isRetryableStatus(res.status) || attempt >= policy.retries) return res;
      retryAfter = res.headers.get('retry-after');
      await res.body?.cancel();
    } catch (err) {
      if (attempt >= policy.retries) {
        const tries = `${attempt + 1} attempt${attempt === 0 ? '' : 's'}`;
        const origin = new URL(url).origin;
        if (err instanceof HubTimeoutError) throw new HubTimeoutError(`${origin} did not answer for ${what} within ${policy.timeoutMs} ms (${tries})`);
        const cause = (err as Error & { cause?: Error }).cause?.message;
        throw new HubConnectionError(`could not reach ${origin} for ${what} (${(err as Error).message}${cause ? `: ${cause}` : ''}; ${tries})`);
      }
    }
    await sleep(retryDelay(policy, attempt, retryAfter));
  }
}

/** A fetch with the policy built in, for clients (such as @huggingface/hub's) that take one. */
export function fetchWithPolicy(policy: RequestPolicy, what: string): typeof fetch {
  return (input, init) => {
    if (typeof input === 'string' || input instanceof URL) return requestWithRetries(policy, String(input), init ?? {}, what);
    return requestWithRetries(policy, input.url, { method: input.method, headers: input.headers, ...init }, what);
  };
}
