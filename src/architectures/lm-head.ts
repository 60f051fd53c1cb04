import { Linear } from '../layers/linear.js';
import type { ModelKind } from './architecture.js';

/** The LM head a decoder architecture builds: none unless a causal LM, tied or its own matrix. */
export function lmHeadFor(kind: ModelKind, tied: boolean, hiddenSize: number, vocabSize: number): Linear | 'tied' | undefined {
  if (kind !== 'causal-lm') return undefined;
  return tied ? 'tied' : new Linear(hiddenSize, vocabSize);
}
