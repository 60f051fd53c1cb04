import { ConfigReader } from '../config-keys.js';

/** Mamba hyper-parameters, as in HF `MambaConfig`. */
export interface MambaConfig {
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  stateSize: number;
  convKernel: number;
  expand: number;
  dtRank: number;
  convBias: boolean;
  projBias: boolean;
  normEps: number;
  tieWordEmbeddings: boolean;
}

/** Whether a config is in the original state-spaces `mamba_ssm` layout (no model_type). */
export function isStateSpacesConfig(raw: Record<string, unknown>): boolean {
  return raw.model_type === undefined && typeof raw.d_model === 'number' && typeof raw.n_layer === 'number';
}

/** Parse a Mamba `config.json`: HF's keys, or mamba_ssm's (`d_model`, `n_layer`, `ssm_cfg`). */
export function parseMambaConfig(raw: Record<string, unknown>): MambaConfig {
  if (isStateSpacesConfig(raw)) return parseStateSpacesConfig(raw);
  const c = new ConfigReader(raw, 'mamba');
  const hiddenSize = c.integer('hidden_size', 768);
  const rank = raw.time_step_rank ?? 'auto';
  return {
    vocabSize: c.integer('vocab_size', 50280),
    hiddenSize,
    numLayers: c.integer('num_hidden_layers', 32),
    stateSize: c.integer('state_size', 16),
    convKernel: c.integer('conv_kernel', 4),
    expand: c.integer('expand', 2),
    dtRank: rank === 'auto' ? Math.ceil(hiddenSize / 16) : c.integer('time_step_rank'),
    convBias: c.boolean('use_conv_bias', true),
    projBias: c.boolean('use_bias', false),
    normEps: c.number('layer_norm_epsilon', 1e-5),
    tieWordEmbeddings: c.boolean('tie_word_embeddings', true),
  };
}

/**
 * mamba_ssm's `MambaConfig` (the state-spaces/mamba-* repos). Absent `ssm_cfg` keys take the
 * mixer's defaults; the vocab is padded up to `pad_vocab_size_multiple`; the RMSNorm eps (1e-5)
 * is mamba_ssm's default, not stored.
 */
function parseStateSpacesConfig(raw: Record<string, unknown>): MambaConfig {
  const c = new ConfigReader(raw, 'mamba (state-spaces)');
  const ssm = new ConfigReader(c.object('ssm_cfg') ?? {}, 'mamba (state-spaces) ssm_cfg');
  if (!c.boolean('rms_norm', true)) throw new Error('mamba (state-spaces) config: rms_norm=false (LayerNorm) is not supported');
  const hiddenSize = c.integer('d_model');
  const multiple = c.integer('pad_vocab_size_multiple', 8);
  const vocab = c.integer('vocab_size');
  const rank = (c.object('ssm_cfg') ?? {}).dt_rank ?? 'auto';
  return {
    vocabSize: Math.ceil(vocab / multiple) * multiple,
    hiddenSize,
    numLayers: c.integer('n_layer'),
    stateSize: ssm.integer('d_state', 16),
    convKernel: ssm.integer('d_conv', 4),
    expand: ssm.integer('expand', 2),
    dtRank: rank === 'auto' ? Math.ceil(hiddenSize / 16) : ssm.integer('dt_rank'),
    convBias: ssm.boolean('conv_bias', true),
    projBias: ssm.boolean('bias', false),
    normEps: 1e-5,
    tieWordEmbeddings: c.boolean('tie_embeddings', true),
  };
}
