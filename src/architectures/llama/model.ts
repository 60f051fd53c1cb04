import { Attention } from '../../layers/attention.js';
import { Block } from '../../layers/block.js';
import { Embeddings } from '../../layers/embeddings.js';
import { FeedForward } from '../../layers/feed-forward.js';
import { RMSNorm } from '../../layers/norm.js';
import type { Architecture } from '../architecture.js';
import { lmHeadFor } from '../lm-head.js';
import { SizeTally } from '../size.js';
import { LLAMA_SIZE_KEYS, parseLlamaConfig, type LlamaConfig, llamaHfConfig } from './config.js';
import { llamaHfNames, llamaIgnored, llamaNames } from './hf.js';

/**
 * Llama: token embeddings -> N pre-norm blocks (RMSNorm, causal GQA attention with rotary,
 * gated SiLU feed-forward) -> final RMSNorm -> LM head (tied or not).
 */
export const llama: Architecture<LlamaConfig> = {
  name: 'llama',
  modelTypes: ['llama'],
  kinds: ['decoder', 'causal-lm'],
  parseConfig: parseLlamaConfig,
  hfNames: llamaHfNames,
  hfExport: { names: llamaNames, config: llamaHfConfig },
  ignore: llamaIgnored,
  sizeKeys: LLAMA_SIZE_KEYS,
  estimateSize(c, kind) {
    const h = c.hiddenSize;
    const n = c.numLayers;
    return new SizeTally()
      .embeddings({ vocabSize: c.vocabSize, hiddenSize: h })
      .norm('rmsnorm', h, 2 * n + 1)
      .attention({ hiddenSize: h, numHeads: c.numHeads, numKvHeads: c.numKvHeads, headDim: c.headDim, qkvBias: c.attentionBias, outputBias: c.attentionBias }, n)
      .feedForward({ hiddenSize: h, intermediateSize: c.intermediateSize, gated: true, bias: c.mlpBias }, n)
      .lmHead(kind, c.tieWordEmbeddings, h, c.vocabSize);
  },
  build(c, kind) {
    const layers = Array.from(
      { length: c.numLayers },
      () =>
        new Block({
          placement: 'pre',
          mixerNorm: new RMSNorm(c.hiddenSize, c.rmsNormEps),
          mixer: new Attention({
            hiddenSize: c.hiddenSize,
            numHeads: c.numHeads,
            numKvHeads: c.numKvHeads,
            headDim: c.headDim,
            qkvBias: c.attentionBias,
            outputBias: c.attentionBias,
            causal: true,
            rotary: { dim: c.headDim, base: c.ropeTheta, scaling: c.ropeScaling },
          }),
          ffnNorm: new RMSNorm(c.hiddenSize, c.rmsNormEps),
          ffn: new FeedForward({
            hiddenSize: c.hiddenSize,
            intermediateSize: c.intermediateSize,
            activation: c.hiddenAct,
            gated: true,
            bias: c.mlpBias,
          }),
        }),
    );
    return {
      embeddings: new Embeddings({ vocabSize: c.vocabSize, hiddenSize: c.hiddenSize }),
      layers,
      finalNorm: new RMSNorm(c.hiddenSize, c.rmsNormEps),
      lmHead: lmHeadFor(kind, c.tieWordEmbeddings, c.hiddenSize, c.vocabSize),
    };
  },
};
