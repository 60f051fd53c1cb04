/**
 * Hub failures users can act on, each with the model, the endpoint and the fix in its message.
 */

/** Base class so callers can tell hub problems from checkpoint problems. */
export class HubError extends Error {
  override name = 'HubError';
}

/** Model or revision does not exist (HTTP 404). */
export class ModelNotFoundError extends HubError {
  override name = 'ModelNotFoundError';
}

/** Gated or private model without (valid) credentials (HTTP 401/403). */
export class HubAuthError extends HubError {
  override name = 'HubAuthError';
}

/** Offline mode and the cache cannot satisfy the request. */
export class OfflineCacheMissError extends HubError {
  override name = 'OfflineCacheMissError';
}

/** The hub could not be reached at all (DNS, refused connection, TLS ...). */
export class HubConnectionError extends HubError {
  override name = 'HubConnectionError';
}

/** A transfer stopped early or delivered other bytes than announced. */
export class DownloadError extends HubError {
  override name = 'DownloadError';
}

/** Map an HTTP status for `name` to the error a user can act on. */
export function httpError(status: number, name: string, endpoint: string, what: string, detail = ''): HubError {
  const extra = detail === '' ? '' : ` (${detail})`;
  if (status === 404) {
    return new ModelNotFoundError(`model '${name}' not found on ${endpoint}${what === '' ? '' : `: ${what}`}${extra}; check the name and revision`);
  }
  if (status === 401 || status === 403) {
    return new HubAuthError(
      `model '${name}' on ${endpoint} refused access (HTTP ${status}${extra}): it is gated or private, or does not exist. ` +
        'Set HF_TOKEN (or pass { token }, or log in so that $HF_HOME/token exists) with a token that can read it, and accept its terms on its hub page if it is gated',
    );
  }
  return new HubError(`hub request for model '${name}' on ${endpoint} failed with HTTP ${status}${what === '' ? '' : ` (${what})`}${extra}`);
}
