/**
 * Tessera: compose, inspect and distil neural networks from shared building blocks on TensorFlow.js.
 * @packageDocumentation
 */
import 'reflect-metadata';
// lm.generate, model.save, model.runWithCache and the other convenience methods.
import './model-methods.js';

export { initBackend, activeBackend, registerBackendLoader, BACKEND_PREFERENCE, type BackendName, type BackendOptions } from './kernels/backend.js';
export { setMatmulPrecision, getMatmulPrecision, setNumThreads, getNumThreads, nativeInfo, type MatmulPrecision, type NativeInfo } from './kernels/native/index.js';

// Building blocks, models and architectures, hooks, hybrids, generation, precision
export * from './exports-shared.js';

// Loading
export { AutoEncoder, AutoDecoder, AutoCausalLM, AutoMaskedLM, buildFromConfig, modelFromCheckpoint } from './loaders/auto.js';
export { readCheckpointDir, readConfig, readWeights, type Checkpoint } from './loaders/checkpoint.js';
export { readSafetensors, parseSafetensors, writeSafetensors, serializeSafetensors, type TensorToSave } from './loaders/safetensors.js';
export { readPytorchCheckpoint, UnsafePickleError } from './loaders/pytorch/index.js';
export {
  snapshotModel,
  resolveHubSettings,
  HubError,
  ModelNotFoundError,
  HubAuthError,
  OfflineCacheMissError,
  DownloadError,
  HubConnectionError,
  HubTimeoutError,
  LockTimeoutError,
  UnsafeHubNameError,
  type SnapshotOptions,
  type HubOptions,
  type ProgressSink,
} from './loaders/hub/index.js';
export type { HubLoadOptions } from './loaders/pretrained.js';
export { AutoTokenizer, type TokenizerInput, type EncodeOptions, type Encoding, type DecodeOptions } from './loaders/tokenizer.js';

// One storage interface for a model's files (docs/browser.md#storage-and-caching): a folder here, the hub or a URL over fetch
export { folderStorage } from './loaders/storage/folder.js';
export { hubStorage, urlStorage, type HubStorageOptions, type HttpStorageOptions } from './loaders/storage/http.js';
export { type ModelStorage, type CacheLike } from './loaders/storage/storage.js';
export { loadFromStorage, StorageAutoCausalLM, StorageAutoTokenizer, type StorageLoadOptions } from './loaders/storage/auto.js';
export { Tokenizer } from './loaders/tokenizer-core.js';

// Training and distillation (docs/distillation.md)
export { registerGradients, gradientsRegistered } from './training/gradients.js';
export { Distiller, type DistillOptions, type DistillTrainOptions, type DistillBatch, type StepLosses } from './training/distiller.js';
export { klDivergenceLoss, hiddenMseLoss, hiddenCosineLoss, attentionLoss, nextTokenCrossEntropy, type MaskOptions } from './training/losses.js';
export { uniformLayerMap, type LayerMap } from './training/layer-map.js';
export { adam, FusedAdamOptimizer, type AdamOptions } from './training/adam.js';

// Saving, in Tessera's format or Hugging Face's (docs/export.md)
export { saveModel, type SaveOptions, type SaveFormat } from './loaders/save.js';
export { HfExportError } from './loaders/export-hf.js';

// Pipelines: a model and its tokenizer behind one call per task (docs/pipelines.md)
export type { ModelLoadOptions } from './loaders/auto.js';
export { loadTextGenerationPipeline, type TextGenerationPipeline, type TextGenerationCallOptions, type TextGenerationResult } from './pipelines/text-generation.js';
export { pipeline, PIPELINE_TASKS, UnknownTaskError, type PipelineTask, type Pipeline } from './pipelines/pipeline.js';
export type { PipelineOptions } from './pipelines/load.js';
export { loadFeatureExtractionPipeline, type FeatureExtractionPipeline, type FeatureExtractionOptions, type PooledExtractionOptions, type TokenExtractionOptions, type Pooling } from './pipelines/feature-extraction.js';
export { loadFillMaskPipeline, type FillMaskPipeline, type FillMaskOptions, type FillMaskResult } from './pipelines/fill-mask.js';
