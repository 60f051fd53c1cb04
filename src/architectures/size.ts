import type { AttentionOptions } from '../layers/attention.js';
import type { EmbeddingsOptions } from '../layers/embeddings.js';
import type { FeedForwardOptions } from '../layers/feed-forward.js';
import type { MambaOptions } from '../layers/mamba.js';
import type { MixtureOfExpertsOptions } from '../layers/moe.js';
import type { ModelKind } from './model-kind.js';

/** What building a model would allocate, counted from its config without allocating. */
export interface ModelSize {
  /** Scalar weights (each a float32 once built). */
  parameters: number;
  /** Parameter tensors. */
  tensors: number;
  /** Elements of the largest parameter tensor. */
  largestTensor: number;
}

/**
 * Adds up parameter shapes the way the layers' constructors create them (src/layers: Linear,
 * the norms, Embedding, Attention, MambaMixer, FeedForward, MixtureOfExperts, Pooler), so an
 * architecture can say what it would allocate before it allocates anything. The tests check
 * that it matches `parameterCount()` of built models exactly.
 */
export class SizeTally implements ModelSize {
  parameters = 0;
  tensors = 0;
  largestTensor = 0;

  /** `times` tensors of `shape`. */
  add(shape: number[], times = 1): this {
    const n = shape.reduce((a, b) => a * b, 1);
    this.parameters += n * times;
    this.tensors += times;
    if (times > 0) this.largestTensor = Math.max(this.largestTensor, n);
    return this;
  }

  linear(inFeatures: number, outFeatures: number, bias = false, times = 1): this {
    this.add([outFeatures, inFeatures], times);
    return bias ? this.add([outFeatures], times) : this;
  }

  norm(kind: 'layernorm' | 'rmsnorm', size: number, times = 1): this {
    return this.add([size], kind === 'layernorm' ? 2 * times : times);
  }

  attention(o: Omit<AttentionOptions, 'causal'>, times = 1): this {
    const headDim = o.headDim ?? o.hiddenSize / o.numHeads;
    this.linear(o.hiddenSize, o.numHeads * headDim, o.qkvBias, times);
    this.linear(o.hiddenSize, o.numKvHeads * headDim, o.qkvBias, 2 * times);
    return this.linear(o.numHeads * headDim, o.hiddenSize, o.outputBias, times);
  }

  mamba(o: MambaOptions, times = 1): this {
    const inner = o.expand * o.hiddenSize;
    this.linear(o.hiddenSize, 2 * inner, o.projBias, times); // inProj
    this.add([inner, 1, o.convKernel], times);
    if (o.convBias) this.add([inner], times);
    this.linear(inner, o.dtRank + 2 * o.stateSize, false, times); // xProj
    this.linear(o.dtRank, inner, true, times); // dtProj
    this.add([inner, o.stateSize], times).add([inner], times); // A_log, D
    this.linear(inner, o.hiddenSize, o.projBias, times); // outProj
    if (o.innerNormEps !== undefined) this.norm('rmsnorm', o.dtRank, times).norm('rmsnorm', o.stateSize, 2 * times);
    return this;
  }

  feedForward(o: Omit<FeedForwardOptions, 'activation'>, times = 1): this {
    const bias = o.bias ?? false;
    this.linear(o.hiddenSize, o.intermediateSize, bias, o.gated ? 2 * times : times);
    return this.linear(o.intermediateSize, o.hiddenSize, bias, times);
  }

  moe(o: Omit<MixtureOfExpertsOptions, 'activation'>, times = 1): this {
    this.linear(o.hiddenSize, o.numExperts, false, times); // router
    return this.feedForward({ hiddenSize: o.hiddenSize, intermediateSize: o.intermediateSize, gated: true }, o.numExperts * times);
  }

  embeddings(o: EmbeddingsOptions): this {
    this.add([o.vocabSize, o.hiddenSize]);
    if (o.maxPositions !== undefined) this.add([o.maxPositions, o.hiddenSize]);
    if (o.typeVocabSize !== undefined) this.add([o.typeVocabSize, o.hiddenSize]);
    return o.norm === undefined ? this : this.norm(o.norm.kind, o.hiddenSize);
  }

  /** The LM head `lmHeadFor` builds: a matrix of its own only for an untied causal LM. */
  lmHead(kind: ModelKind, tied: boolean, hiddenSize: number, vocabSize: number): this {
    return kind === 'causal-lm' && !tied ? this.linear(hiddenSize, vocabSize) : this;
  }
}
