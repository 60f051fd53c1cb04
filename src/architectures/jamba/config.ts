import { ConfigReader } from '../config-keys.js';

/** Jamba hyper-parameters, as in HF `JambaConfig` (defaults are HF's). */
export interface JambaConfig {
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  hiddenAct: string;
  rmsNormEps: number;
  tieWordEmbeddings: boolean;
  /** Layer i is attention when i % attnLayerPeriod === attnLayerOffset, otherwise Mamba. */
  attnLayerPeriod: number;
  attnLayerOffset: number;
  /** With numExperts > 1, layer i has a MoE feed-forward when i % expertLayerPeriod === expertLayerOffset. */
  numExperts: number;
  numExpertsPerTok: number;
  expertLayerPeriod: number;
  expertLayerOffset: number;
  mambaStateSize: number;
  mambaConvKernel: number;
  mambaExpand: number;
  mambaDtRank: number;
  mambaConvBias: boolean;
  mambaProjBias: boolean;
}

/** Parse a Jamba `config.json`. */
export function parseJambaConfig(raw: Record<string, unknown>): JambaConfig {
  const c = new ConfigReader(raw, 'jamba');
  const hiddenSize = c.integer('hidden_size', 4096);
  const numHeads = c.integer('num_attention_heads', 32);
  const rank = raw.mamba_dt_rank ?? 'auto';
  const config: JambaConfig = {
    vocabSize: c.integer('vocab_size', 65536),
    hiddenSize,
    intermediateSize: c.integer('intermediate_size', 14336),
    numLayers: c.integer('num_hidden_layers', 32),
    numHeads,
    numKvHeads: c.integer('num_key_value_heads', 8),
    hiddenAct: c.string('hidden_act', 'silu'),
    rmsNormEps: c.number('rms_norm_eps', 1e-6),
    tieWordEmbeddings: c.boolean('tie_word_embeddings', false),
    attnLayerPeriod: c.integer('attn_layer_period', 8),
    attnLayerOffset: c.integer('attn_layer_offset', 4),
    numExperts: c.integer('num_experts', 16),
    numExpertsPerTok: c.integer('num_experts_per_tok', 2),
    expertLayerPeriod: c.integer('expert_layer_period', 2),
    expertLayerOffset: c.integer('expert_layer_offset', 1),
    mambaStateSize: c.integer('mamba_d_state', 16),
    mambaConvKernel: c.integer('mamba_d_conv', 4),
    mambaExpand: c.integer('mamba_expand', 2),
    // HF turns "auto" into ceil(hidden / 16) when the config is built; saved configs hold the number.
    mambaDtRank: rank === 'auto' ? Math.ceil(hiddenSize / 16) : c.integer('mamba_dt_rank'),
    mambaConvBias: c.boolean('mamba_conv_bias', true),
    mambaProjBias: c.boolean('mamba_proj_bias', false),
  };
  for (const [period, offset, name] of [
    [config.attnLayerPeriod, config.attnLayerOffset, 'attn_layer'],
    [config.expertLayerPeriod, config.expertLayerOffset, 'expert_layer'],
  ] as const) {
    if (period < 1 || offset >= period) {
      throw new Error(`jamba config: '${name}_offset' (${offset}) must be less than '${name}_period' (${period})`);
    }
  }
  return config;
}
