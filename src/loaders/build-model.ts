/**
 * Models from a config and a checkpoint's tensors: no file is read here, so the Node loaders
 * (auto.ts) and the storage loaders (browser) share it.
 */
import '../architectures/index.js';
// Models built here come with their convenience methods (generate, hooks) in any entry point.
import '../model-methods.js';
import type { Architecture, ModelKind } from '../architectures/architecture.js';
import { checkedConfig, disposeOnThrow, type BuildOptions } from '../architectures/build.js';
import { architectureRegistry } from '../architectures/registry.js';
import { CausalLM } from '../models/causal-lm.js';
import { DecoderModel } from '../models/decoder.js';
import { EncoderModel } from '../models/encoder.js';
import { MaskedLM } from '../models/masked-lm.js';
import type { TransformerModel } from '../models/transformer.js';
import { withInitSeed } from '../layers/init.js';
import { settleWeights } from '../kernels/weights.js';
import { checkKeys } from '../util/options.js';
import { packWeights } from '../layers/packed-weights.js';
import { checkWeightDtype } from '../ops/packed-weights.js';
import { assignWeights, WEIGHT_LOAD_OPTION_KEYS, type WeightLoadOptions } from './assign-weights.js';
import { requireMaskedLmHead } from './masked-lm-head.js';
// Type only: checkpoint.ts reads files, and nothing of it reaches the browser bundle.
import type { Checkpoint } from './checkpoint.js';

type ModelClass = new (parts: any, config: any, architecture: string) => TransformerModel;
const CLASSES: Record<ModelKind, ModelClass> = { encoder: EncoderModel, decoder: DecoderModel, 'causal-lm': CausalLM, 'masked-lm': MaskedLM };
export const KIND_LABEL: Record<ModelKind, string> = { encoder: 'AutoEncoder', decoder: 'AutoDecoder', 'causal-lm': 'AutoCausalLM', 'masked-lm': 'AutoMaskedLM' };

/** The architecture of a raw config and its checked, typed config (no tensor is created). */
export function checkedArchitecture(raw: Record<string, unknown>, kind: ModelKind, source: string, options: BuildOptions): { architecture: Architecture<any>; config: unknown } {
  const architecture = architectureRegistry().forConfig(raw, source);
  if (!architecture.kinds.includes(kind)) {
    const use = architecture.kinds.map((k) => KIND_LABEL[k]).join(' or ');
    throw new Error(`${architecture.name} models cannot be loaded with ${KIND_LABEL[kind]}; use ${use}`);
  }
  return { architecture, config: checkedConfig(architecture, raw, kind, source, options) };
}

/**
 * Build a randomly initialised model of `kind` from a raw HF-style config. The config is checked
 * and the model's size estimated against `options.maxParameterBytes` (see {@link BuildOptions})
 * before any tensor is created; `source` names the config in errors.
 */
export function buildFromConfig(
  raw: Record<string, unknown>,
  kind: ModelKind,
  source = 'config',
  options: BuildOptions = {},
): { model: TransformerModel; architecture: Architecture<any> } {
  return buildChecked(checkedArchitecture(raw, kind, source, options), kind, options.seed);
}

/** Build the model of an already checked config (see {@link checkedArchitecture}). */
export function buildChecked(
  { architecture, config }: { architecture: Architecture<any>; config: unknown },
  kind: ModelKind,
  seed?: number,
): { model: TransformerModel; architecture: Architecture<any> } {
  const model = disposeOnThrow(() => withInitSeed(seed, () => new CLASSES[kind](architecture.build(config, kind), config, architecture.name)));
  return { model, architecture };
}

/** Build a model from a read checkpoint and copy its weights in (options: see {@link WeightLoadOptions}). */
export function modelFromCheckpoint(checkpoint: Checkpoint, kind: ModelKind, options: WeightLoadOptions = {}): TransformerModel {
  checkKeys(options, WEIGHT_LOAD_OPTION_KEYS, 'modelFromCheckpoint options');
  return fillFromCheckpoint(buildFromConfig(checkpoint.config, kind, `${checkpoint.dir}/config.json`), checkpoint, kind, options);
}

/** Copy a checkpoint's weights into a freshly built model; the model is disposed if that fails. */
export function fillFromCheckpoint(
  { model, architecture }: { model: TransformerModel; architecture: Architecture<any> },
  checkpoint: Checkpoint,
  kind: ModelKind,
  options: WeightLoadOptions,
): TransformerModel {
  // Heads the model does not have are ignored, as HF does: the LM head when loading a decoder,
  // or when it is tied to the embeddings (state-spaces checkpoints store the tied copy).
  const ignore = [...(architecture.ignore ?? []), ...(architecture.ignoreForKind?.(kind) ?? [])];
  if (kind !== 'causal-lm' || (model as CausalLM).tiedEmbeddings) ignore.push(/^lm_head\./);
  try {
    if (kind === 'masked-lm') requireMaskedLmHead(model, checkpoint, architecture);
    assignWeights(model, checkpoint.tensors, { rules: architecture.hfNames, ignore, source: checkpoint.dir, allowNonFinite: options.allowNonFinite });
    // Packed before the weights move to huge pages, which then copy only what stays float32.
    packWeights(model, checkWeightDtype(options.dtype ?? 'float32', `${KIND_LABEL[kind]} options`));
    settleWeights(model.namedParameters().map(([, p]) => p));
  } catch (err) {
    model.dispose();
    throw err;
  }
  return model;
}

