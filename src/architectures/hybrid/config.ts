import type { NormPlacement } from '../../layers/residual.js';
import type { PartSpec } from '../../layers/registry.js';
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

function isPart(v: unknown): v is PartSpec {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && typeof (v as PartSpec).type === 'string';
}

/**
 * Validate a hybrid config.json (or an object a user wrote) and return it typed. The structure
 * and the model-wide sizes are checked here; every part's options are checked by `checkHybrid`,
 * which loaders and `buildHybrid` run before anything is built.
 */
export function parseHybridConfig(raw: Record<string, unknown>): HybridConfig {
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
