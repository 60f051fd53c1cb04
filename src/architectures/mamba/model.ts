import { Block } from '../../layers/block.js';
import { Embeddings } from '../../layers/embeddings.js';
import { MambaMixer } from '../../layers/mamba.js';
import { RMSNorm } from '../../layers/norm.js';
import type { Architecture } from '../architecture.js';
import { lmHeadFor } from '../lm-head.js';
import { SizeTally } from '../size.js';
import { isStateSpacesConfig, MAMBA_SIZE_KEYS, parseMambaConfig, type MambaConfig, mambaHfConfig } from './config.js';
import { mambaHfNames, mambaNames } from './hf.js';

/**
 * Mamba: token embeddings -> N pre-norm blocks (RMSNorm, Mamba mixer, no feed-forward) ->
 * final RMSNorm -> LM head, tied to the embeddings by default.
 */
export const mamba: Architecture<MambaConfig> = {
  name: 'mamba',
  modelTypes: ['mamba'],
  detect: isStateSpacesConfig,
  kinds: ['decoder', 'causal-lm'],
  parseConfig: parseMambaConfig,
  hfNames: mambaHfNames,
  hfExport: { names: mambaNames, config: mambaHfConfig },
  sizeKeys: MAMBA_SIZE_KEYS,
  estimateSize(c, kind) {
    const h = c.hiddenSize;
    return new SizeTally()
      .embeddings({ vocabSize: c.vocabSize, hiddenSize: h })
      .norm('rmsnorm', h, c.numLayers + 1)
      .mamba({ hiddenSize: h, stateSize: c.stateSize, convKernel: c.convKernel, expand: c.expand, dtRank: c.dtRank, convBias: c.convBias, projBias: c.projBias }, c.numLayers)
      .lmHead(kind, c.tieWordEmbeddings, h, c.vocabSize);
  },
  build(c, kind) {
    const layers = Array.from(
      { length: c.numLayers },
      () =>
        new Block({
          placement: 'pre',
          mixerNorm: new RMSNorm(c.hiddenSize, c.normEps),
          mixer: new MambaMixer({
            hiddenSize: c.hiddenSize,
            stateSize: c.stateSize,
            convKernel: c.convKernel,
            expand: c.expand,
            dtRank: c.dtRank,
            convBias: c.convBias,
            projBias: c.projBias,
          }),
        }),
    );
    return {
      embeddings: new Embeddings({ vocabSize: c.vocabSize, hiddenSize: c.hiddenSize }),
      layers,
      finalNorm: new RMSNorm(c.hiddenSize, c.normEps),
      lmHead: lmHeadFor(kind, c.tieWordEmbeddings, c.hiddenSize, c.vocabSize),
    };
  },
};
