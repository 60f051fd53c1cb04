import type { NormPlacement } from '../../layers/residual.js';
import type { PartSpec } from '../../layers/registry.js';
import { checkKeys, UnknownKeyError, type KeyList } from '../../util/options.js';
import { CONFIG_LIMITS, ConfigError, ConfigReader } from '../config-keys.js';

/** The `model_type` Tessera writes in a saved hybrid's config.json. */
export const HYBRID_MODEL_TYPE = 'tessera-hybrid';

/** One layer of a hybrid: a mixer, optionally a feed-forward, and (optionally overridden) norms. */
export interface LayerSpec {
  /** `{ type: 'attention' | 'mamba' | <registered>, ...options }`. */
  mixer: PartSpec;
  /** `{ type: 'dense' | 'gated' | 'moe' | <registered>, ...options }`; absent or null: no feed-forward. */
  ffn?: PartSpec | null;
  /** The norm before the mixer (after it, for post-norm); default: the model's `norm`. */
  mixerNorm?: PartSpec;
  /** The norm paired with the feed-forward; default: the model's `norm`. */
  ffnNorm?: PartSpec;
}

/** Embedding options beyond token embeddings (learned positions and token types, as BERT has). */
export interface HybridEmbeddings {
  maxPositions?: number;
  typeVocabSize?: number;
  norm?: PartSpec;
}

/**
 * A model as plain data: vocabulary, width and a list of layers naming their parts. It is what
 * `model.save()` writes to config.json (with `model_type: "tessera-hybrid"`), and what
 * {@link buildHybrid} composes from registered blocks.
 */
export interface HybridConfig {
  vocabSize: number;
  hiddenSize: number;
  layers: LayerSpec[];
  /** Default norm for every block and the final norm, e.g. `{ type: 'rmsnorm', eps: 1e-6 }`. */
  norm: PartSpec;
  /** Norm after the last layer; default `norm`; null for none (BERT). */
  finalNorm?: PartSpec | null;
  /** Pre-norm (default) or post-norm blocks. */
  placement?: NormPlacement;
  /** Whether the LM head reuses the token embedding matrix (default false). */
  tieWordEmbeddings?: boolean;
  embeddings?: HybridEmbeddings;
  /** A pooler over the first token (BERT); only encoders use it. */
  pooler?: boolean;
}

// The keys each level of the format may hold, checked against the interfaces by the compiler.
const CONFIG_KEYS = {
  vocabSize: true, hiddenSize: true, layers: true, norm: true, finalNorm: true, placement: true,
  tieWordEmbeddings: true, embeddings: true, pooler: true,
} as const satisfies KeyList<HybridConfig>;
/** What `model.save()` adds beside the config in config.json. */
const FILE_KEYS = ['model_type', 'source_architecture'];
const LAYER_KEYS = { mixer: true, ffn: true, mixerNorm: true, ffnNorm: true } as const satisfies KeyList<LayerSpec>;
const EMBEDDING_KEYS = { maxPositions: true, typeVocabSize: true, norm: true } as const satisfies KeyList<HybridEmbeddings>;

/**
 * {@link checkKeys} with the error a bad config gives everywhere else ({@link ConfigError}), so
 * one `catch` handles every config mistake.
 */
export function checkConfigKeys(value: unknown, known: KeyList<object> | readonly string[], where: string): void {
  try {
    checkKeys(value, known, where);
  } catch (err) {
    if (err instanceof UnknownKeyError) throw new ConfigError(err.message, err.key);
    throw err;
  }
}

/**
 * Reject keys the hybrid format does not have, at the top level, in `embeddings` and in every
 * layer (each part's own options are checked with the part): a misspelt `ffn` or
 * `tieWordEmbeddings` would otherwise build a different model without a word. Unlike HF
 * config.json files, which carry many keys Tessera does not read, this format is Tessera's own.
 */
export function checkHybridKeys(raw: Record<string, unknown>): void {
  checkConfigKeys(raw, [...Object.keys(CONFIG_KEYS), ...FILE_KEYS], 'hybrid config');
  checkConfigKeys(raw.embeddings, EMBEDDING_KEYS, 'hybrid config embeddings');
  if (Array.isArray(raw.layers)) raw.layers.forEach((layer: unknown, i) => checkConfigKeys(layer, LAYER_KEYS, `hybrid config layers[${i}]`));
}

function isPart(v: unknown): v is PartSpec {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && typeof (v as PartSpec).type === 'string';
}

/**
 * Validate a hybrid config.json (or an object a user wrote) and return it typed. The structure
 * and the model-wide sizes are checked here; every part's options are checked by `checkHybrid`,
 * which loaders and `buildHybrid` run before anything is built.
 */
export function parseHybridConfig(raw: Record<string, unknown>): HybridConfig {
  checkHybridKeys(raw);
  const c = new ConfigReader(raw, HYBRID_MODEL_TYPE);
  const part = (v: unknown, where: string): PartSpec => {
    if (!isPart(v)) throw new ConfigError(`${HYBRID_MODEL_TYPE} config: '${where}' must be an object with a string 'type', got ${JSON.stringify(v)}`);
    return v;
  };
  const layers = raw.layers;
  if (!Array.isArray(layers) || layers.length === 0) throw c.error('layers', 'must be a non-empty list of layer specs');
  if (layers.length > CONFIG_LIMITS.layers) throw c.error('layers', `has ${layers.length} layers, more than Tessera's bound of ${CONFIG_LIMITS.layers}`);
  const placement = c.oneOf('placement', ['pre', 'post'] as const, 'pre');
  const embeddings = c.object('embeddings');
  return {
    vocabSize: c.size('vocabSize'),
    hiddenSize: c.size('hiddenSize'),
    norm: part(raw.norm, 'norm'),
    finalNorm: raw.finalNorm === null ? null : raw.finalNorm === undefined ? undefined : part(raw.finalNorm, 'finalNorm'),
    placement,
    tieWordEmbeddings: c.boolean('tieWordEmbeddings', false),
    embeddings:
      embeddings === undefined
        ? undefined
        : {
            maxPositions: embeddings.maxPositions === undefined ? undefined : new ConfigReader(embeddings, 'embeddings').size('maxPositions'),
            typeVocabSize: embeddings.typeVocabSize === undefined ? undefined : new ConfigReader(embeddings, 'embeddings').size('typeVocabSize'),
            norm: embeddings.norm === undefined ? undefined : part(embeddings.norm, 'embeddings.norm'),
          },
    pooler: c.boolean('pooler', false),
    layers: layers.map((l: unknown, i): LayerSpec => {
      if (typeof l !== 'object' || l === null) throw c.error(`layers[${i}]`, 'must be an object');
      const spec = l as Record<string, unknown>;
      return {
        mixer: part(spec.mixer, `layers[${i}].mixer`),
        ffn: spec.ffn === undefined || spec.ffn === null ? null : part(spec.ffn, `layers[${i}].ffn`),
        mixerNorm: spec.mixerNorm === undefined ? undefined : part(spec.mixerNorm, `layers[${i}].mixerNorm`),
        ffnNorm: spec.ffnNorm === undefined ? undefined : part(spec.ffnNorm, `layers[${i}].ffnNorm`),
      };
    }),
  };
}
