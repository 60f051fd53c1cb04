/**
 * Tessera's browser entry (the package's `browser` export condition; docs/browser.md): the same
 * building blocks, models, hooks and generation as the Node entry, with backends chosen among
 * webgpu, webgl, wasm and cpu, and loaders that read through a {@link ModelStorage} (the hub or a
 * URL over `fetch`, cached with the Cache API). Nothing here imports a Node built-in; what needs
 * a file system (saving to a folder, PyTorch `.bin` checkpoints, distillation's native gradients,
 * the pipelines) stays in the Node entry.
 * @packageDocumentation
 */
import 'reflect-metadata';
// lm.generate, model.save, model.runWithCache and the other convenience methods.
import './model-methods.js';

// Backends (docs/browser.md#backends)
export {
  initBrowserBackend as initBackend,
  activeBrowserBackend as activeBackend,
  BROWSER_BACKEND_PREFERENCE as BACKEND_PREFERENCE,
  type BrowserBackendName as BackendName,
  type BrowserBackendOptions as BackendOptions,
} from './kernels/browser-backend.js';

// Building blocks, models and architectures, hooks, hybrids, generation, precision
export * from './exports-shared.js';

// Loading through storage (docs/browser.md#storage-and-caching)
export {
  StorageAutoEncoder as AutoEncoder,
  StorageAutoDecoder as AutoDecoder,
  StorageAutoCausalLM as AutoCausalLM,
  StorageAutoMaskedLM as AutoMaskedLM,
  StorageAutoTokenizer as AutoTokenizer,
  loadFromStorage,
  readStorageWeights,
  type StorageLoadOptions,
} from './loaders/storage/auto.js';
export { hubStorage, urlStorage, DEFAULT_HUB_ENDPOINT, DEFAULT_CACHE_NAME, type HubStorageOptions, type HttpStorageOptions } from './loaders/storage/http.js';
export { readJsonFile, readTextFile, openBrowserCache, type ModelStorage, type CacheLike } from './loaders/storage/storage.js';
export { Tokenizer, type TokenizerInput, type EncodeOptions, type Encoding, type DecodeOptions } from './loaders/tokenizer-core.js';
export { buildFromConfig, modelFromCheckpoint } from './loaders/build-model.js';
export { parseSafetensors, serializeSafetensors, type TensorToSave } from './loaders/safetensors-format.js';
export { HubError, ModelNotFoundError, HubAuthError, OfflineCacheMissError, HubConnectionError } from './loaders/hub/errors.js';
