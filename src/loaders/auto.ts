import '../architectures/index.js';
import type { Architecture, ModelKind } from '../architectures/architecture.js';
import { architectureRegistry } from '../architectures/registry.js';
import { CausalLM } from '../models/causal-lm.js';
import { DecoderModel } from '../models/decoder.js';
import { EncoderModel } from '../models/encoder.js';
import type { TransformerModel } from '../models/transformer.js';
import { assignWeights } from './assign-weights.js';
import { readCheckpointDir, type Checkpoint } from './checkpoint.js';
import { snapshotModel } from './hub/snapshot.js';
import { resolvePretrained, type HubLoadOptions } from './pretrained.js';

type ModelClass = new (parts: any, config: any, architecture: string) => TransformerModel;
const CLASSES: Record<ModelKind, ModelClass> = { encoder: EncoderModel, decoder: DecoderModel, 'causal-lm': CausalLM };
const KIND_LABEL: Record<ModelKind, string> = { encoder: 'AutoEncoder', decoder: 'AutoDecoder', 'causal-lm': 'AutoCausalLM' };

/** Build a randomly initialised model of `kind` from a raw HF-style config. */
export function buildFromConfig(raw: Record<string, unknown>, kind: ModelKind, source = 'config'): { model: TransformerModel; architecture: Architecture<any> } {
  const architecture = architectureRegistry().forConfig(raw, source);
  if (!architecture.kinds.includes(kind)) {
    const use = architecture.kinds.map((k) => KIND_LABEL[k]).join(' or ');
    throw new Error(`${architecture.name} models cannot be loaded with ${KIND_LABEL[kind]}; use ${use}`);
  }
  const config = architecture.parseConfig(raw);
  return { model: new CLASSES[kind](architecture.build(config, kind), config, architecture.name), architecture };
}

/** Build a model from a read checkpoint and copy its weights in. */
export function modelFromCheckpoint(checkpoint: Checkpoint, kind: ModelKind): TransformerModel {
  const { model, architecture } = buildFromConfig(checkpoint.config, kind, `${checkpoint.dir}/config.json`);
  // Heads the model does not have are ignored, as HF does: the LM head when loading a decoder,
  // or when it is tied to the embeddings (state-spaces checkpoints store the tied copy).
  const ignore = [...(architecture.ignore ?? [])];
  if (kind !== 'causal-lm' || (model as CausalLM).tiedEmbeddings) ignore.push(/^lm_head\./);
  try {
    assignWeights(model, checkpoint.tensors, { rules: architecture.hfNames, ignore, source: checkpoint.dir });
  } catch (err) {
    model.dispose();
    throw err;
  }
  return model;
}

async function loadDir(dir: string, kind: ModelKind): Promise<TransformerModel> {
  return modelFromCheckpoint(await readCheckpointDir(dir), kind);
}

/** Load bidirectional encoders (BERT). */
export class AutoEncoder {
  /** Load from a Hugging Face model folder (config.json + weights). */
  static async fromDir(dir: string): Promise<EncoderModel> {
    return (await loadDir(dir, 'encoder')) as EncoderModel;
  }
  /**
   * Load by Hugging Face model name (e.g. `'org/name'`) through the shared Hugging Face cache,
   * downloading config, weights and tokenizer files only when the cache lacks them.
   */
  static async fromHfHub(name: string, opts: HubLoadOptions = {}): Promise<EncoderModel> {
    return (await loadDir(await snapshotModel(name, opts), 'encoder')) as EncoderModel;
  }
  /** A model folder if `nameOrPath` is an existing directory, else a hub model name (AutoEncoder.fromHfHub). */
  static async fromPretrained(nameOrPath: string, opts: HubLoadOptions = {}): Promise<EncoderModel> {
    return (await loadDir(await resolvePretrained(nameOrPath, opts), 'encoder')) as EncoderModel;
  }
  /** A randomly initialised encoder for an HF-style config. */
  static fromConfig(config: Record<string, unknown>): EncoderModel {
    return buildFromConfig(config, 'encoder').model as EncoderModel;
  }
}

/** Load decoders without their LM head (hidden states only). */
export class AutoDecoder {
  /** Load from a Hugging Face model folder (config.json + weights). */
  static async fromDir(dir: string): Promise<DecoderModel> {
    return (await loadDir(dir, 'decoder')) as DecoderModel;
  }
  /**
   * Load by Hugging Face model name (e.g. `'org/name'`) through the shared Hugging Face cache,
   * downloading config, weights and tokenizer files only when the cache lacks them.
   */
  static async fromHfHub(name: string, opts: HubLoadOptions = {}): Promise<DecoderModel> {
    return (await loadDir(await snapshotModel(name, opts), 'decoder')) as DecoderModel;
  }
  /** A model folder if `nameOrPath` is an existing directory, else a hub model name (AutoDecoder.fromHfHub). */
  static async fromPretrained(nameOrPath: string, opts: HubLoadOptions = {}): Promise<DecoderModel> {
    return (await loadDir(await resolvePretrained(nameOrPath, opts), 'decoder')) as DecoderModel;
  }
  /** A randomly initialised decoder for an HF-style config. */
  static fromConfig(config: Record<string, unknown>): DecoderModel {
    return buildFromConfig(config, 'decoder').model as DecoderModel;
  }
}

/** Load causal language models (Llama, Mamba, ...). */
export class AutoCausalLM {
  /** Load from a Hugging Face model folder (config.json + weights). */
  static async fromDir(dir: string): Promise<CausalLM> {
    return (await loadDir(dir, 'causal-lm')) as CausalLM;
  }
  /**
   * Load by Hugging Face model name (e.g. `'org/name'`) through the shared Hugging Face cache,
   * downloading config, weights and tokenizer files only when the cache lacks them.
   */
  static async fromHfHub(name: string, opts: HubLoadOptions = {}): Promise<CausalLM> {
    return (await loadDir(await snapshotModel(name, opts), 'causal-lm')) as CausalLM;
  }
  /** A model folder if `nameOrPath` is an existing directory, else a hub model name (AutoCausalLM.fromHfHub). */
  static async fromPretrained(nameOrPath: string, opts: HubLoadOptions = {}): Promise<CausalLM> {
    return (await loadDir(await resolvePretrained(nameOrPath, opts), 'causal-lm')) as CausalLM;
  }
  /** A randomly initialised causal LM for an HF-style config. */
  static fromConfig(config: Record<string, unknown>): CausalLM {
    return buildFromConfig(config, 'causal-lm').model as CausalLM;
  }
}
