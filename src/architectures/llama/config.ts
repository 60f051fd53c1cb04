import type { RopeScaling } from '../../layers/rotary.js';
import { ACTIVATION_NAMES } from '../../ops/activation.js';
import type { ModelKind } from '../model-kind.js';
import { CONFIG_LIMITS, ConfigReader } from '../config-keys.js';
import { checkHeads } from '../checks.js';

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

/** The raw keys that set a Llama model's size (named when an over-limit config left them out). */
export const LLAMA_SIZE_KEYS = ['vocab_size', 'hidden_size', 'intermediate_size', 'num_hidden_layers'];

/**
 * Parse a Llama `config.json`. Absent keys take HF's defaults, which are Llama-7B's sizes (hidden
 * 4096, 32 layers, intermediate 11008, vocab 32000): such a config is judged by its size estimate
 * like any other. Every size is checked here, before anything is built.
 */
export function parseLlamaConfig(raw: Record<string, unknown>): LlamaConfig {
  const c = new ConfigReader(raw, 'llama');
  const hiddenSize = c.size('hidden_size', 4096);
  const numHeads = c.size('num_attention_heads', 32);
  // HF reads null num_key_value_heads / head_dim as "derive it", so null is absent here.
  const numKvHeads = c.has('num_key_value_heads') ? c.size('num_key_value_heads') : numHeads;
  const headDimGiven = c.has('head_dim');
  checkHeads(c, hiddenSize, numHeads, { kvHeads: numKvHeads, headDimGiven, keys: { hidden: 'hidden_size', heads: 'num_attention_heads', kvHeads: 'num_key_value_heads', headDim: 'head_dim' } });
  const headDim = headDimGiven ? c.size('head_dim') : hiddenSize / numHeads;
  if (headDim % 2 !== 0) {
    // Rotary embeddings rotate the two halves of each head against each other.
    const which = headDimGiven ? `'head_dim' (${headDim})` : `the head width 'hidden_size' / 'num_attention_heads' (${hiddenSize} / ${numHeads} = ${headDim})`;
    throw c.error(headDimGiven ? 'head_dim' : 'hidden_size', `gives an odd head width: ${which} must be even for rotary embeddings`);
  }
  const maxPositions = c.size('max_position_embeddings', 2048, CONFIG_LIMITS.positions);
  return {
    vocabSize: c.size('vocab_size', 32000),
    hiddenSize,
    intermediateSize: c.size('intermediate_size', 11008),
    numLayers: c.size('num_hidden_layers', 32, CONFIG_LIMITS.layers),
    numHeads,
    numKvHeads,
    headDim,
    hiddenAct: c.oneOf('hidden_act', ACTIVATION_NAMES, 'silu'),
    maxPositions,
    rmsNormEps: c.positive('rms_norm_eps', 1e-6),
    ropeTheta: c.positive('rope_theta', 10000),
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
      return { type: 'linear', factor: c.positive('factor') };
    case 'dynamic':
      return { type: 'dynamic', factor: c.positive('factor'), maxPositions: c.size('original_max_position_embeddings', maxPositions, CONFIG_LIMITS.positions) };
    case 'llama3': {
      const lowFreqFactor = c.positive('low_freq_factor');
      const highFreqFactor = c.positive('high_freq_factor');
      // The smoothing between the two wavelength bands divides by their difference.
      if (highFreqFactor === lowFreqFactor) throw c.error('high_freq_factor', `must differ from 'low_freq_factor' (both ${lowFreqFactor})`);
      return {
        type: 'llama3',
        factor: c.positive('factor'),
        lowFreqFactor,
        highFreqFactor,
        originalMaxPositions: c.size('original_max_position_embeddings', undefined, CONFIG_LIMITS.positions),
      };
    }
    default:
      throw c.error('rope_type', `'${type}' is not supported (default, linear, dynamic, llama3)`);
  }
}

/** HF's `config.json` for a Llama config: what {@link parseLlamaConfig} reads, as `LlamaForCausalLM` (or `LlamaModel`) saves it. */
export function llamaHfConfig(c: LlamaConfig, kind: ModelKind): Record<string, unknown> {
  return {
    architectures: [kind === 'causal-lm' ? 'LlamaForCausalLM' : 'LlamaModel'],
    model_type: 'llama',
    vocab_size: c.vocabSize,
    hidden_size: c.hiddenSize,
    intermediate_size: c.intermediateSize,
    num_hidden_layers: c.numLayers,
    num_attention_heads: c.numHeads,
    num_key_value_heads: c.numKvHeads,
    // Written only when it is not the derived hidden / heads: older transformers lack the key.
    ...(c.headDim === c.hiddenSize / c.numHeads ? {} : { head_dim: c.headDim }),
    hidden_act: c.hiddenAct,
    max_position_embeddings: c.maxPositions,
    rms_norm_eps: c.rmsNormEps,
    rope_theta: c.ropeTheta,
    rope_scaling: ropeScalingToHf(c.ropeScaling),
    tie_word_embeddings: c.tieWordEmbeddings,
    attention_bias: c.attentionBias,
    mlp_bias: c.mlpBias,
    torch_dtype: 'float32',
  };
}

/** {@link RopeScaling} -> HF `rope_scaling` (null for none), the inverse of {@link parseRopeScaling}. */
export function ropeScalingToHf(s: RopeScaling): Record<string, unknown> | null {
  switch (s.type) {
    case 'default':
      return null;
    case 'linear':
      return { rope_type: 'linear', factor: s.factor };
    case 'dynamic':
      return { rope_type: 'dynamic', factor: s.factor, original_max_position_embeddings: s.maxPositions };
    case 'llama3':
      return {
        rope_type: 'llama3',
        factor: s.factor,
        low_freq_factor: s.lowFreqFactor,
        high_freq_factor: s.highFreqFactor,
        original_max_position_embeddings: s.originalMaxPositions,
      };
  }
}
