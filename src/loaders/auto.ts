import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import '../architectures/index.js';
// Models loaded here come with their convenience methods (generate, save, hooks) even when
// this module is imported directly rather than through the package entry.
import '../model-methods.js';
import type { CausalLM } from '../models/causal-lm.js';
import type { DecoderModel } from '../models/decoder.js';
import type { EncoderModel } from '../models/encoder.js';
import type { MaskedLM } from '../models/masked-lm.js';
import type { TransformerModel } from '../models/transformer.js';
import { settleWeights } from '../kernels/weights.js';
import { checkKeys, type KeyList } from '../util/options.js';
import { checkWeightDtype } from '../ops/packed-weights.js';
import { packWeights } from '../layers/packed-weights.js';
import { WEIGHT_LOAD_OPTION_KEYS, type WeightLoadOptions } from './assign-weights.js';
import { buildChecked, buildFromConfig, checkedArchitecture, fillFromCheckpoint, KIND_LABEL } from './build-model.js';

export { buildFromConfig, modelFromCheckpoint } from './build-model.js';
import type { ModelKind } from '../architectures/architecture.js';
import type { BuildOptions } from '../architectures/build.js';
import { readConfig, readWeights } from './checkpoint.js';
import { snapshotModel } from './hub/snapshot.js';
import { rememberSource } from './model-source.js';
import { HUB_LOAD_OPTION_KEYS, resolvePretrained, type HubLoadOptions } from './pretrained.js';
import { AutoTokenizer } from './tokenizer.js';

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
     * size compared with `options.maxParameterBytes`) before anything is allocated. `dtype` holds
     * the weights as in {@link WeightLoadOptions.dtype}.
     */
    static fromConfig(config: Record<string, unknown>, options: BuildOptions & Pick<WeightLoadOptions, 'dtype'> = {}): M {
      const { dtype, ...build } = options;
      const weightDtype = checkWeightDtype(dtype ?? 'float32', `${KIND_LABEL[kind]}.fromConfig options`);
      const { model } = buildFromConfig(config, kind, 'config', build);
      try {
        packWeights(model, weightDtype); // before the weights move to huge pages
        settleWeights(model.namedParameters().map(([, p]) => p));
      } catch (err) {
        model.dispose();
        throw err;
      }
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
