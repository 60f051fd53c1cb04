/** What a model is used as: an encoder, a decoder without its head, or a causal LM. */
export type ModelKind = 'encoder' | 'decoder' | 'causal-lm';
