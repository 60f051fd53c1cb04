import { Attention } from '../../layers/attention.js';
import { Block } from '../../layers/block.js';
import { Embeddings } from '../../layers/embeddings.js';
import { FeedForward } from '../../layers/feed-forward.js';
import { MaskedLMHead } from '../../layers/masked-lm-head.js';
import { LayerNorm } from '../../layers/norm.js';
import { Pooler } from '../../layers/pooler.js';
import type { Architecture } from '../architecture.js';
import { SizeTally } from '../size.js';
import { BERT_SIZE_KEYS, parseBertConfig, type BertConfig, bertHfConfig } from './config.js';
import { bertHfNames, bertIgnored, bertIgnoredForKind, bertNames } from './hf.js';

/**
 * BERT: learned positions and token types -> LayerNorm -> N post-norm blocks of bidirectional
 * attention and a plain GELU feed-forward -> pooler (encoder) or masked-LM head (masked LM: dense,
 * activation, LayerNorm, then the decoder tied to the word embeddings plus a bias).
 */
export const bert: Architecture<BertConfig> = {
  name: 'bert',
  modelTypes: ['bert'],
  kinds: ['encoder', 'masked-lm'],
  parseConfig: parseBertConfig,
  hfNames: bertHfNames,
  hfExport: { names: bertNames, config: bertHfConfig },
  ignore: bertIgnored,
  ignoreForKind: bertIgnoredForKind,
  sizeKeys: BERT_SIZE_KEYS,
  estimateSize(c, kind) {
    const h = c.hiddenSize;
    const n = c.numLayers;
    const tally = new SizeTally()
      .embeddings({ vocabSize: c.vocabSize, hiddenSize: h, maxPositions: c.maxPositions, typeVocabSize: c.typeVocabSize, norm: { kind: 'layernorm', eps: 0 } })
      .norm('layernorm', h, 2 * n)
      .attention({ hiddenSize: h, numHeads: c.numHeads, numKvHeads: c.numHeads, qkvBias: true, outputBias: true }, n)
      .feedForward({ hiddenSize: h, intermediateSize: c.intermediateSize, gated: false, bias: true }, n)
      .linear(h, h, true); // pooler, or the masked-LM head's dense
    // The masked-LM head's LayerNorm and vocabulary bias; its decoder is the word embeddings.
    return kind === 'masked-lm' ? tally.norm('layernorm', h).add([c.vocabSize]) : tally;
  },
  build(c, kind) {
    const norm = { kind: 'layernorm', eps: c.layerNormEps } as const;
    const layers = Array.from(
      { length: c.numLayers },
      () =>
        new Block({
          placement: 'post',
          mixerNorm: new LayerNorm(c.hiddenSize, c.layerNormEps),
          mixer: new Attention({
            hiddenSize: c.hiddenSize,
            numHeads: c.numHeads,
            numKvHeads: c.numHeads,
            qkvBias: true,
            outputBias: true,
            causal: false,
          }),
          ffnNorm: new LayerNorm(c.hiddenSize, c.layerNormEps),
          ffn: new FeedForward({
            hiddenSize: c.hiddenSize,
            intermediateSize: c.intermediateSize,
            activation: c.hiddenAct,
            gated: false,
            bias: true,
          }),
        }),
    );
    const embeddings = new Embeddings({
      vocabSize: c.vocabSize,
      hiddenSize: c.hiddenSize,
      maxPositions: c.maxPositions,
      typeVocabSize: c.typeVocabSize,
      norm,
    });
    if (kind === 'masked-lm') {
      const maskedLmHead = new MaskedLMHead({
        hiddenSize: c.hiddenSize,
        vocabSize: c.vocabSize,
        activation: c.hiddenAct,
        layerNormEps: c.layerNormEps,
        tiedWeight: embeddings.word.weight,
      });
      return { embeddings, layers, maskedLmHead };
    }
    return { embeddings, layers, pooler: new Pooler(c.hiddenSize) };
  },
};
