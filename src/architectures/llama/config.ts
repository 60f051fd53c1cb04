import type { RopeScaling } from '../../layers/rotary.js';
import { ConfigReader } from '../config-keys.js';

/** Llama hyper-parameters, as in HF `LlamaConfig`. */
export interface LlamaConfig {
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  hiddenAct: string;
  maxPositions: number;
  rmsNormEps: number;
  ropeTheta: number;
  ropeScaling: RopeScaling;
  tieWordEmbeddings: boolean;
  attentionBias: boolean;
  mlpBias: boolean;
}

/** Parse a Llama `config.json` (defaults are HF's). */
export function parseLlamaConfig(raw: Record<string, unknown>): LlamaConfig {
  const c = new ConfigReader(raw, 'llama');
  const hiddenSize = c.integer('hidden_size', 4096);
  const numHeads = c.integer('num_attention_heads', 32);
  const maxPositions = c.integer('max_position_embeddings', 2048);
  return {
    vocabSize: c.integer('vocab_size', 32000),
    hiddenSize,
    intermediateSize: c.integer('intermediate_size', 11008),
    numLayers: c.integer('num_hidden_layers', 32),
    numHeads,
    numKvHeads: c.integer('num_key_value_heads', numHeads),
    headDim: c.integer('head_dim', hiddenSize / numHeads),
    hiddenAct: c.string('hidden_act', 'silu'),
    maxPositions,
    rmsNormEps: c.number('rms_norm_eps', 1e-6),
    ropeTheta: c.number('rope_theta', 10000),
    ropeScaling: parseRopeScaling(c.object('rope_scaling'), maxPositions),
    tieWordEmbeddings: c.boolean('tie_word_embeddings', false),
    attentionBias: c.boolean('attention_bias', false),
    mlpBias: c.boolean('mlp_bias', false),
  };
}

/** HF `rope_scaling` ({rope_type | type, factor, ...}) -> {@link RopeScaling}. */
export function parseRopeScaling(raw: Record<string, unknown> | undefined, maxPositions: number): RopeScaling {
  if (raw === undefined) return { type: 'default' };
  const c = new ConfigReader(raw, 'rope_scaling');
  const type = c.string('rope_type', typeof raw.type === 'string' ? raw.type : 'default');
  switch (type) {
    case 'default':
      return { type: 'default' };
    case 'linear':
      return { type: 'linear', factor: c.number('factor') };
    case 'dynamic':
      return { type: 'dynamic', factor: c.number('factor'), maxPositions: c.integer('original_max_position_embeddings', maxPositions) };
    case 'llama3':
      return {
        type: 'llama3',
        factor: c.number('factor'),
        lowFreqFactor: c.number('low_freq_factor'),
        highFreqFactor: c.number('high_freq_factor'),
        originalMaxPositions: c.integer('original_max_position_embeddings'),
      };
    default:
      throw new Error(`rope_scaling type '${type}' is not supported (default, linear, dynamic, llama3)`);
  }
}
