/** Loading by Hugging Face model name through the Python-compatible cache. */
export { snapshotModel, type SnapshotOptions } from './snapshot.js';
export { resolveHubSettings, type HubOptions, type ProgressSink } from './settings.js';
export { HubError, ModelNotFoundError, HubAuthError, OfflineCacheMissError, DownloadError, HubConnectionError } from './errors.js';
export { HubTimeoutError } from './http.js';
export { LockTimeoutError } from './file-lock.js';
export { UnsafeHubNameError } from './names.js';
export { RepoCache } from './cache-layout.js';
