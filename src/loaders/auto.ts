import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import '../architectures/index.js';
// Models loaded here come with their convenience methods (generate, save, hooks) even when
// this module is imported directly rather than through the package entry.
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
import { settleWeights } from '../kernels/backend.js';
import { checkKeys, type KeyList } from '../util/options.js';
import { packWeights } from '../layers/packed-weights.js';
import { checkWeightDtype } from '../ops/packed-weights.js';
import { assignWeights, WEIGHT_LOAD_OPTION_KEYS, type WeightLoadOptions } from './assign-weights.js';
import { requireMaskedLmHead } from './masked-lm-head.js';
import { readConfig, readWeights, type Checkpoint } from './checkpoint.js';
import { snapshotModel } from './hub/snapshot.js';
import { rememberSource } from './model-source.js';
import { HUB_LOAD_OPTION_KEYS, resolvePretrained, type HubLoadOptions } from './pretrained.js';
import { AutoTokenizer } from './tokenizer.js';

type ModelClass = new (parts: any, config: any, architecture: string) => TransformerModel;
const CLASSES: Record<ModelKind, ModelClass> = { encoder: EncoderModel, decoder: DecoderModel, 'causal-lm': CausalLM, 'masked-lm': MaskedLM };
const KIND_LABEL: Record<ModelKind, string> = { encoder: 'AutoEncoder', decoder: 'AutoDecoder', 'causal-lm': 'AutoCausalLM', 'masked-lm': 'AutoMaskedLM' };

/** The architecture of a raw config and its checked, typed config (no tensor is created). */
function checkedArchitecture(raw: Record<string, unknown>, kind: ModelKind, source: string, options: BuildOptions): { architecture: Architecture<any>; config: unknown } {
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
function buildChecked(
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
function fillFromCheckpoint(
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

/** Options of the `Auto*` loaders that read files: the weights' and `tokenizer`. */
export interface ModelLoadOptions extends WeightLoadOptions {
  /**
   * `AutoCausalLM` only: also load the folder's tokenizer (`tokenizer.json` ...) and attach it with
   * the defaults of `generation_config.json` (else `config.json`), so `lm.generate('text')` and
   * `lm.streamText` work (docs/generation.md#text-generation). Default false.
   */
  tokenizer?: boolean;
}

const MODEL_LOAD_OPTION_KEYS = { ...WEIGHT_LOAD_OPTION_KEYS, tokenizer: true } satisfies KeyList<ModelLoadOptions>;
const HUB_MODEL_LOAD_OPTION_KEYS = { ...HUB_LOAD_OPTION_KEYS, ...MODEL_LOAD_OPTION_KEYS } satisfies KeyList<HubLoadOptions & ModelLoadOptions>;

/**
 * The contents of `dir/generation_config.json`, or undefined when the folder has none; a file
 * that cannot be read or parsed is an error naming it.
 */
export async function readGenerationConfig(dir: string): Promise<Record<string, unknown> | undefined> {
  const file = join(dir, 'generation_config.json');
  const text = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw new Error(`${file}: cannot be read (${err.message})`);
  });
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch (err) {
    throw new Error(`${file}: invalid JSON (${(err as Error).message})`);
  }
}

/** Attach the folder's tokenizer and generation defaults to a just loaded causal LM. */
async function attachFolderTokenizer(lm: CausalLM, dir: string): Promise<void> {
  lm.attachTokenizer(await AutoTokenizer.fromDir(dir), { generationConfig: await readGenerationConfig(dir) });
}

async function loadDir(dir: string, kind: ModelKind, options: ModelLoadOptions): Promise<TransformerModel> {
  if (options.tokenizer === true && kind !== 'causal-lm') {
    throw new Error(`${KIND_LABEL[kind]}: the tokenizer option is for AutoCausalLM (text generation); load a tokenizer with AutoTokenizer.fromDir(dir)`);
  }
  checkWeightDtype(options.dtype ?? 'float32', `${KIND_LABEL[kind]} options`); // before any file is read
  const config = await readConfig(dir);
  // A bad or oversized config fails before gigabytes of weights are read.
  const checked = checkedArchitecture(config, kind, `${dir}/config.json`, {});
  const tensors = await readWeights(dir);
  // Built from the config checked above: it is parsed and size-checked once, not again.
  const model = fillFromCheckpoint(buildChecked(checked, kind), { dir, config, tensors }, kind, options);
  rememberSource(model, { dir, config }); // an HF export copies its tokenizer files and token ids
  if (options.tokenizer === true) {
    try {
      await attachFolderTokenizer(model as CausalLM, dir);
    } catch (err) {
      model.dispose();
      throw err;
    }
  }
  return model;
}

/** The loading entry points shared by the three `Auto*` classes; `M` is the model class of `kind`. */
function autoLoader<M extends TransformerModel>(kind: ModelKind) {
  return class {
    /**
     * Load from a Hugging Face model folder (config.json + weights). A weight holding NaN or
     * ±Infinity fails the load unless `opts.allowNonFinite` is set.
     */
    static async fromDir(dir: string, opts: ModelLoadOptions = {}): Promise<M> {
      checkKeys(opts, MODEL_LOAD_OPTION_KEYS, `${KIND_LABEL[kind]}.fromDir options`);
      return (await loadDir(dir, kind, opts)) as M;
    }
    /**
     * Load by Hugging Face model name (e.g. `'org/name'`) through the shared Hugging Face cache,
     * downloading config, weights and tokenizer files only when the cache lacks them.
     */
    static async fromHfHub(name: string, opts: HubLoadOptions & ModelLoadOptions = {}): Promise<M> {
      checkKeys(opts, HUB_MODEL_LOAD_OPTION_KEYS, `${KIND_LABEL[kind]}.fromHfHub options`);
      // Only the hub options go to the snapshot (which fetches tokenizer files anyway); the load options to loadDir.
      const { allowNonFinite: _, tokenizer: __, dtype: ___, ...hub } = opts;
      return (await loadDir(await snapshotModel(name, hub), kind, opts)) as M;
    }
    /** A model folder if `nameOrPath` is an existing directory, else a hub model name (see fromHfHub). */
    static async fromPretrained(nameOrPath: string, opts: HubLoadOptions & ModelLoadOptions = {}): Promise<M> {
      checkKeys(opts, HUB_MODEL_LOAD_OPTION_KEYS, `${KIND_LABEL[kind]}.fromPretrained options`);
      const { allowNonFinite: _, tokenizer: __, dtype: ___, ...hub } = opts;
      return (await loadDir(await resolvePretrained(nameOrPath, hub), kind, opts)) as M;
    }
    /**
     * A randomly initialised model for an HF-style (or Tessera hybrid) config, checked (and its
     * size compared with `options.maxParameterBytes`) before anything is allocated.
     */
    static fromConfig(config: Record<string, unknown>, options: BuildOptions = {}): M {
      const { model } = buildFromConfig(config, kind, 'config', options);
      settleWeights(model.namedParameters().map(([, p]) => p));
      return model as M;
    }
  };
}

/** Load bidirectional encoders (BERT). */
export const AutoEncoder = autoLoader<EncoderModel>('encoder');
/** Load decoders without their LM head (hidden states only). */
export const AutoDecoder = autoLoader<DecoderModel>('decoder');
/** Load causal language models (Llama, Mamba, Jamba, hybrids). */
export const AutoCausalLM = autoLoader<CausalLM>('causal-lm');
/** Load masked language models (BERT with its masked-LM head: `BertForMaskedLM` checkpoints). */
export const AutoMaskedLM = autoLoader<MaskedLM>('masked-lm');
