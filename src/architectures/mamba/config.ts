import { CONFIG_LIMITS, ConfigReader } from '../config-keys.js';
import { innerWidth, readDtRank } from '../checks.js';
import { MAMBA_DEFAULTS, type MambaOptions } from '../../layers/mamba.js';
import type { ModelKind } from '../model-kind.js';

/** Mamba hyper-parameters, as in HF `MambaConfig`: the mixer's options (without Jamba's inner norms) and the model's. */
export interface MambaConfig extends Omit<MambaOptions, 'innerNormEps'> {
  vocabSize: number;
  numLayers: number;
  normEps: number;
  tieWordEmbeddings: boolean;
}

/** Whether a config is in the original state-spaces `mamba_ssm` layout (no model_type). */
export function isStateSpacesConfig(raw: Record<string, unknown>): boolean {
  // By the keys alone, so that a bad value (`d_model: "64"`) is reported by the parser, by name.
  return raw.model_type === undefined && raw.d_model !== undefined && raw.n_layer !== undefined;
}

/** The raw keys that set a Mamba model's size, in both layouts (named when an over-limit config left them out). */
export const MAMBA_SIZE_KEYS = ['vocab_size', 'hidden_size', 'num_hidden_layers', 'd_model', 'n_layer'];

/** Parse a Mamba `config.json`: HF's keys, or mamba_ssm's (`d_model`, `n_layer`, `ssm_cfg`). Every size is checked here. */
export function parseMambaConfig(raw: Record<string, unknown>): MambaConfig {
  if (isStateSpacesConfig(raw)) return parseStateSpacesConfig(raw);
  const c = new ConfigReader(raw, 'mamba');
  const hiddenSize = c.size('hidden_size', 768);
  const expand = c.size('expand', MAMBA_DEFAULTS.expand);
  innerWidth(c, expand, hiddenSize, 'expand', 'hidden_size');
  return {
    vocabSize: c.size('vocab_size', 50280),
    hiddenSize,
    numLayers: c.size('num_hidden_layers', 32, CONFIG_LIMITS.layers),
    stateSize: c.size('state_size', MAMBA_DEFAULTS.stateSize),
    convKernel: c.size('conv_kernel', MAMBA_DEFAULTS.convKernel),
    expand,
    dtRank: readDtRank(c, raw, 'time_step_rank', hiddenSize),
    convBias: c.boolean('use_conv_bias', MAMBA_DEFAULTS.convBias),
    projBias: c.boolean('use_bias', MAMBA_DEFAULTS.projBias),
    normEps: c.positive('layer_norm_epsilon', 1e-5),
    tieWordEmbeddings: c.boolean('tie_word_embeddings', true),
  };
}

/**
 * mamba_ssm's `MambaConfig` (the state-spaces/mamba-* repos). Absent `ssm_cfg` keys take the
 * mixer's defaults; the vocab is padded up to `pad_vocab_size_multiple`; the RMSNorm eps (1e-5)
 * is mamba_ssm's default, not stored. Mamba-2 layers, MLPs and attention layers (mamba_ssm 2's
 * `ssm_cfg.layer`, `d_intermediate`, `attn_layer_idx`) are rejected rather than ignored.
 */
function parseStateSpacesConfig(raw: Record<string, unknown>): MambaConfig {
  const c = new ConfigReader(raw, 'mamba (state-spaces)');
  const ssmRaw = c.object('ssm_cfg') ?? {};
  const ssm = new ConfigReader(ssmRaw, 'mamba (state-spaces) ssm_cfg');
  if (!c.boolean('rms_norm', true)) throw c.error('rms_norm', 'is false (LayerNorm), which is not supported');
  if (ssm.string('layer', 'Mamba1') !== 'Mamba1') throw ssm.error('layer', `'${ssmRaw.layer}' is not supported (only Mamba1)`);
  if (c.integer('d_intermediate', 0) !== 0) throw c.error('d_intermediate', 'is not 0: MLP blocks in mamba_ssm models are not supported');
  if (Array.isArray(raw.attn_layer_idx) && raw.attn_layer_idx.length > 0) throw c.error('attn_layer_idx', 'is not empty: attention layers in mamba_ssm models are not supported');
  const hiddenSize = c.size('d_model');
  const multiple = c.size('pad_vocab_size_multiple', 8);
  const vocab = c.size('vocab_size');
  const expand = ssm.size('expand', MAMBA_DEFAULTS.expand);
  innerWidth(ssm, expand, hiddenSize, 'expand', 'd_model');
  const vocabSize = Math.ceil(vocab / multiple) * multiple;
  if (vocabSize > CONFIG_LIMITS.dimension) throw c.error('pad_vocab_size_multiple', `pads 'vocab_size' ${vocab} to ${vocabSize}, above Tessera's bound on any dimension (${CONFIG_LIMITS.dimension})`);
  return {
    vocabSize,
    hiddenSize,
    numLayers: c.size('n_layer', undefined, CONFIG_LIMITS.layers),
    stateSize: ssm.size('d_state', MAMBA_DEFAULTS.stateSize),
    convKernel: ssm.size('d_conv', MAMBA_DEFAULTS.convKernel),
    expand,
    dtRank: readDtRank(ssm, ssmRaw, 'dt_rank', hiddenSize),
    convBias: ssm.boolean('conv_bias', MAMBA_DEFAULTS.convBias),
    projBias: ssm.boolean('bias', MAMBA_DEFAULTS.projBias),
    normEps: 1e-5,
    tieWordEmbeddings: c.boolean('tie_embeddings', true),
  };
}

/**
 * HF's `config.json` for a Mamba config, as `MambaForCausalLM` (or `MambaModel`) saves it; a model
 * loaded from a state-spaces folder is written in HF's keys too.
 */
export function mambaHfConfig(c: MambaConfig, kind: ModelKind): Record<string, unknown> {
  return {
    architectures: [kind === 'causal-lm' ? 'MambaForCausalLM' : 'MambaModel'],
    model_type: 'mamba',
    vocab_size: c.vocabSize,
    hidden_size: c.hiddenSize,
    num_hidden_layers: c.numLayers,
    state_size: c.stateSize,
    conv_kernel: c.convKernel,
    expand: c.expand,
    // HF derives it from expand when building the config; written as HF's save_pretrained does.
    intermediate_size: c.expand * c.hiddenSize,
    time_step_rank: c.dtRank,
    use_conv_bias: c.convBias,
    use_bias: c.projBias,
    layer_norm_epsilon: c.normEps,
    hidden_act: 'silu',
    tie_word_embeddings: c.tieWordEmbeddings,
    torch_dtype: 'float32',
  };
}
