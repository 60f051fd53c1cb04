/**
 * The exports the Node entry (`index.ts`) and the browser entry (`browser.ts`) share: building
 * blocks, models and architectures, hooks, hybrids, generation and precision. Each entry adds its
 * own backends, loaders and (in Node) files, training and pipelines.
 */
// Building blocks
export { Module, Layer, ModuleList, type HookFn, type HookContext, type HookHandle } from './layers/module.js';
export { createContext, type ForwardContext, type LayerStateStore } from './layers/context.js';
export { Linear, Identity } from './layers/linear.js';
export { linear } from './ops/linear.js';
export { TiedLinear } from './layers/tied-linear.js';
export { LayerNorm, RMSNorm, createNorm, type NormSpec } from './layers/norm.js';
export { activation, ACTIVATION_NAMES, type Activation } from './ops/activation.js';
export { Embedding, Embeddings, type EmbeddingsOptions } from './layers/embeddings.js';
export { FeedForward, type FeedForwardOptions } from './layers/feed-forward.js';
export { RotaryEmbedding, inverseFrequencies, type RotaryOptions, type RopeScaling } from './layers/rotary.js';
export { Attention, type AttentionOptions } from './layers/attention.js';
export { ATTENTION_TAPS, type AttentionTap } from './ops/attention.js';
export { MambaMixer, MAMBA_TAPS, type MambaTap, type MambaOptions } from './layers/mamba.js';
export { sequentialScan, type ScanInputs, type ScanOutputs, type SelectiveScan } from './ops/scan-reference.js';
export { selectiveScan } from './ops/selective-scan.js';
export { residual, type NormPlacement } from './layers/residual.js';
export { Block, type BlockParts } from './layers/block.js';
export { Pooler } from './layers/pooler.js';
export { MaskedLMHead, type MaskedLMHeadOptions } from './layers/masked-lm-head.js';

// Models and architectures
export { TransformerModel, disposeOutput, type ModelParts, type ForwardOptions, type HiddenOutput } from './models/transformer.js';
export { EncoderModel, type EncoderOutput } from './models/encoder.js';
export { DecoderModel } from './models/decoder.js';
export { CausalLM, type CausalLMOutput } from './models/causal-lm.js';
export { MaskedLM, type MaskedLMOutput } from './models/masked-lm.js';
export { IdOutOfRangeError, ModelDisposedError } from './models/errors.js';
export type { Model, HookableModel } from './models/model.js';
export type { Architecture, HfExport, ModelKind } from './architectures/architecture.js';
export { ArchitectureRegistry, architectureRegistry } from './architectures/registry.js';
export { ConfigReader, ConfigError, CONFIG_LIMITS } from './architectures/config-keys.js';
export { MAX_MODEL_BYTES_ENV, parameterByteLimit, type BuildOptions, type ByteLimit } from './architectures/build.js';
export { bert, llama, mamba, builtinArchitectures } from './architectures/index.js';
export type { BertConfig } from './architectures/bert/config.js';
export type { LlamaConfig } from './architectures/llama/config.js';
export type { MambaConfig } from './architectures/mamba/config.js';

// Weight names and assignment
export { renameParameter, nameMap, type RenameRules, type NameMap, type NameMapSpec, type NamePair } from './architectures/rename.js';
export { assignWeights, type AssignOptions, type WeightLoadOptions } from './loaders/assign-weights.js';
export type { RawTensor, TensorMap } from './loaders/raw-tensor.js';

// Hooks and activation capture (docs/hooks.md)
export { hookPoints, addHook, addPreHook, runWithCache, runWithHooks, type HookSpec, type RunWithCacheOptions, type CachedRun } from './hooks/run.js';
export { ActivationCache } from './hooks/activation-cache.js';
export { hookTargets, selectHookPoints, type HookTarget, type HookPointSelector } from './hooks/hook-points.js';

// Hybrids: the layer registry, MoE, hybrid configs, Jamba
export { MixtureOfExperts, MOE_TAPS, type MixtureOfExpertsOptions } from './layers/moe.js';
export {
  LayerRegistry,
  layerRegistry,
  registerMixer,
  registerFeedForward,
  registerNorm,
  type PartKind,
  type PartSpec,
  type PartFactory,
  type PartDescriber,
} from './layers/registry.js';
export { HYBRID_MODEL_TYPE, parseHybridConfig, type HybridConfig, type LayerSpec, type HybridEmbeddings } from './architectures/hybrid/config.js';
export { buildHybrid, hybrid } from './architectures/hybrid/model.js';
export { everyNth, fromPattern, type EveryNthOptions } from './architectures/hybrid/pattern.js';
export { jamba, jambaToHybrid } from './architectures/jamba/model.js';
export type { JambaConfig } from './architectures/jamba/config.js';
export { describeModel } from './architectures/hybrid/describe.js';
export { toHybrid, copyMatchingWeights, type HybridEdits, type WeightCopyReport } from './architectures/hybrid/convert.js';

// Generation (KV caches, Mamba states, chunked scan)
export { GenerationCache, disposeSnapshot, type CacheSnapshot, type CacheOwner } from './generation/cache.js';
export { NonFiniteLogitsError, CacheModelMismatchError, StatelessMixerError } from './generation/errors.js';
export { UnknownKeyError } from './util/options.js';
export { generate, stream, generateSteps, DEFAULT_MAX_NEW_TOKENS, type GenerateOptions, type TokenEvent } from './generation/generate.js';
export type { Strategy, GreedyStrategy, SamplingStrategy } from './generation/sampling.js';
export { chunkedScan, chunkedScanWith, DEFAULT_CHUNK } from './ops/chunked-scan.js';

// Text generation: a tokenizer attached to a causal LM, defaults from generation_config.json, stop strings, text streams
export { generateText, streamText, attachTokenizer, attachedTokenizer, textDefaults } from './generation/text.js';
export { generationDefaults, HF_DEFAULT_TOP_K, type AttachTokenizerOptions } from './generation/generation-config.js';
export type { TextGenerateOptions, TextTokenizer } from './generation/text-options.js';
export { NoTokenizerError } from './generation/errors.js';

// Precision: linear weights held as bfloat16, float16 or int8 (the `dtype` load option; docs/precision.md)
export { packWeights, weightBytes, type PackSummary } from './layers/packed-weights.js';
export { WEIGHT_DTYPES, type WeightDtype } from './ops/packed-weights.js';
