import { ACTIVATION_NAMES } from '../../ops/activation.js';
import { CONFIG_LIMITS, ConfigReader } from '../config-keys.js';
import { checkHeads, innerWidth, readDtRank } from '../checks.js';
import { MAMBA_DEFAULTS } from '../../layers/mamba.js';
import type { ModelKind } from '../model-kind.js';

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

/** The raw keys that set a Jamba model's size (named when an over-limit config left them out). */
export const JAMBA_SIZE_KEYS = ['vocab_size', 'hidden_size', 'intermediate_size', 'num_hidden_layers', 'num_experts'];

/** Parse a Jamba `config.json`; every size, period and offset is checked here, before anything is built. */
export function parseJambaConfig(raw: Record<string, unknown>): JambaConfig {
  const c = new ConfigReader(raw, 'jamba');
  const hiddenSize = c.size('hidden_size', 4096);
  const numHeads = c.size('num_attention_heads', 32);
  const numKvHeads = c.size('num_key_value_heads', 8);
  checkHeads(c, hiddenSize, numHeads, { kvHeads: numKvHeads });
  const mambaExpand = c.size('mamba_expand', MAMBA_DEFAULTS.expand);
  innerWidth(c, mambaExpand, hiddenSize, 'mamba_expand', 'hidden_size');
  const numLayers = c.size('num_hidden_layers', 32, CONFIG_LIMITS.layers);
  const numExperts = c.size('num_experts', 16, CONFIG_LIMITS.experts);
  const config: JambaConfig = {
    vocabSize: c.size('vocab_size', 65536),
    hiddenSize,
    intermediateSize: c.size('intermediate_size', 14336),
    numLayers,
    numHeads,
    numKvHeads,
    hiddenAct: c.oneOf('hidden_act', ACTIVATION_NAMES, 'silu'),
    rmsNormEps: c.positive('rms_norm_eps', 1e-6),
    tieWordEmbeddings: c.boolean('tie_word_embeddings', false),
    attnLayerPeriod: c.size('attn_layer_period', 8, CONFIG_LIMITS.layers),
    attnLayerOffset: c.integer('attn_layer_offset', 4),
    numExperts,
    numExpertsPerTok: c.size('num_experts_per_tok', 2, CONFIG_LIMITS.experts),
    expertLayerPeriod: c.size('expert_layer_period', 2, CONFIG_LIMITS.layers),
    expertLayerOffset: c.integer('expert_layer_offset', 1),
    mambaStateSize: c.size('mamba_d_state', MAMBA_DEFAULTS.stateSize),
    mambaConvKernel: c.size('mamba_d_conv', MAMBA_DEFAULTS.convKernel),
    mambaExpand,
    // HF turns "auto" into ceil(hidden / 16) when the config is built; saved configs hold the number.
    mambaDtRank: readDtRank(c, raw, 'mamba_dt_rank', hiddenSize),
    mambaConvBias: c.boolean('mamba_conv_bias', MAMBA_DEFAULTS.convBias),
    mambaProjBias: c.boolean('mamba_proj_bias', MAMBA_DEFAULTS.projBias),
  };
  for (const [period, offset, name] of [
    [config.attnLayerPeriod, config.attnLayerOffset, 'attn_layer'],
    [config.expertLayerPeriod, config.expertLayerOffset, 'expert_layer'],
  ] as const) {
    if (offset >= period) throw c.error(`${name}_offset`, `(${offset}) must be less than '${name}_period' (${period})`);
  }
  // With one expert the feed-forwards are dense and num_experts_per_tok is unused (as in HF).
  if (numExperts > 1 && config.numExpertsPerTok > numExperts) {
    throw c.error('num_experts_per_tok', `(${config.numExpertsPerTok}) must be at most 'num_experts' (${numExperts})`);
  }
  return config;
}

/** HF's `config.json` for a Jamba config: what {@link parseJambaConfig} reads, as `JambaForCausalLM` (or `JambaModel`) saves it. */
export function jambaHfConfig(c: JambaConfig, kind: ModelKind): Record<string, unknown> {
  return {
    architectures: [kind === 'causal-lm' ? 'JambaForCausalLM' : 'JambaModel'],
    model_type: 'jamba',
    vocab_size: c.vocabSize,
    hidden_size: c.hiddenSize,
    intermediate_size: c.intermediateSize,
    num_hidden_layers: c.numLayers,
    num_attention_heads: c.numHeads,
    num_key_value_heads: c.numKvHeads,
    hidden_act: c.hiddenAct,
    rms_norm_eps: c.rmsNormEps,
    tie_word_embeddings: c.tieWordEmbeddings,
    attn_layer_period: c.attnLayerPeriod,
    attn_layer_offset: c.attnLayerOffset,
    num_experts: c.numExperts,
    num_experts_per_tok: c.numExpertsPerTok,
    expert_layer_period: c.expertLayerPeriod,
    expert_layer_offset: c.expertLayerOffset,
    mamba_d_state: c.mambaStateSize,
    mamba_d_conv: c.mambaConvKernel,
    mamba_expand: c.mambaExpand,
    mamba_dt_rank: c.mambaDtRank,
    mamba_conv_bias: c.mambaConvBias,
    mamba_proj_bias: c.mambaProjBias,
    // HF's default (true) needs mamba-ssm's CUDA kernels and fails on a CPU; the pure-torch path computes the same.
    use_mamba_kernels: false,
    torch_dtype: 'float32',
  };
}
