import { ConfigReader } from '../config-keys.js';

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

/** Parse a BERT `config.json` (defaults are HF's). */
export function parseBertConfig(raw: Record<string, unknown>): BertConfig {
  const c = new ConfigReader(raw, 'bert');
  const positionType = c.string('position_embedding_type', 'absolute');
  if (positionType !== 'absolute') {
    throw new Error(`bert config: position_embedding_type '${positionType}' is not supported (only 'absolute')`);
  }
  return {
    vocabSize: c.integer('vocab_size'),
    hiddenSize: c.integer('hidden_size', 768),
    numLayers: c.integer('num_hidden_layers', 12),
    numHeads: c.integer('num_attention_heads', 12),
    intermediateSize: c.integer('intermediate_size', 3072),
    hiddenAct: c.string('hidden_act', 'gelu'),
    maxPositions: c.integer('max_position_embeddings', 512),
    typeVocabSize: c.integer('type_vocab_size', 2),
    layerNormEps: c.number('layer_norm_eps', 1e-12),
  };
}
