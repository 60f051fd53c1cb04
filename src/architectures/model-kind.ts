/** What a model is used as: an encoder, a decoder without its head, a causal LM or a masked LM. */
export type ModelKind = 'encoder' | 'decoder' | 'causal-lm' | 'masked-lm';
