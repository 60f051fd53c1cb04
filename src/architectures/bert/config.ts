import type { ModelKind } from '../model-kind.js';
import { ACTIVATION_NAMES } from '../../ops/activation.js';
import { CONFIG_LIMITS, ConfigReader } from '../config-keys.js';
import { checkHeads } from '../checks.js';

/** BERT hyper-parameters, as in HF `BertConfig`. */
export interface BertConfig {
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  intermediateSize: number;
  hiddenAct: string;
  maxPositions: number;
  typeVocabSize: number;
  layerNormEps: number;
}

/** The raw keys that set a BERT model's size (named when an over-limit config left them out). */
export const BERT_SIZE_KEYS = ['vocab_size', 'hidden_size', 'num_hidden_layers', 'intermediate_size', 'max_position_embeddings', 'type_vocab_size'];

/** Parse a BERT `config.json` (defaults are HF's); every size is checked before anything is built. */
export function parseBertConfig(raw: Record<string, unknown>): BertConfig {
  const c = new ConfigReader(raw, 'bert');
  const positionType = c.string('position_embedding_type', 'absolute');
  if (positionType !== 'absolute') {
    throw c.error('position_embedding_type', `'${positionType}' is not supported (only 'absolute')`);
  }
  const hiddenSize = c.size('hidden_size', 768);
  const numHeads = c.size('num_attention_heads', 12);
  checkHeads(c, hiddenSize, numHeads);
  return {
    vocabSize: c.size('vocab_size'),
    hiddenSize,
    numLayers: c.size('num_hidden_layers', 12, CONFIG_LIMITS.layers),
    numHeads,
    intermediateSize: c.size('intermediate_size', 3072),
    hiddenAct: c.oneOf('hidden_act', ACTIVATION_NAMES, 'gelu'),
    maxPositions: c.size('max_position_embeddings', 512),
    typeVocabSize: c.size('type_vocab_size', 2),
    layerNormEps: c.positive('layer_norm_eps', 1e-12),
  };
}

/**
 * HF's `config.json` for a BERT config: what {@link parseBertConfig} reads, as `BertModel` (or,
 * for a masked LM, `BertForMaskedLM`) saves it.
 */
export function bertHfConfig(c: BertConfig, kind?: ModelKind): Record<string, unknown> {
  return {
    architectures: [kind === 'masked-lm' ? 'BertForMaskedLM' : 'BertModel'],
    model_type: 'bert',
    vocab_size: c.vocabSize,
    hidden_size: c.hiddenSize,
    num_hidden_layers: c.numLayers,
    num_attention_heads: c.numHeads,
    intermediate_size: c.intermediateSize,
    hidden_act: c.hiddenAct,
    max_position_embeddings: c.maxPositions,
    type_vocab_size: c.typeVocabSize,
    layer_norm_eps: c.layerNormEps,
    position_embedding_type: 'absolute',
    torch_dtype: 'float32',
  };
}
