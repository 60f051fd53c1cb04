import { Block } from '../../layers/block.js';
import { Embeddings } from '../../layers/embeddings.js';
import type { Layer } from '../../layers/module.js';
import { Pooler } from '../../layers/pooler.js';
import { layerRegistry, type PartKind, type PartSpec } from '../../layers/registry.js';
import type { ModelParts } from '../../models/transformer.js';
import type { Architecture, ModelKind } from '../architecture.js';
import { disposeOnThrow } from '../build.js';
import { lmHeadFor } from '../lm-head.js';
import { checkHybrid, embeddingNorm } from './check.js';
import { HYBRID_MODEL_TYPE, parseHybridConfig, type HybridConfig } from './config.js';
import './parts.js';

/**
 * Compose a model from a {@link HybridConfig}: each layer is one shared Block whose mixer,
 * feed-forward and norms are built by name from the layer registry. Nothing here knows which
 * mixer is which.
 */
export function buildHybrid(config: HybridConfig, kind: ModelKind): ModelParts {
  checkHybrid(config, kind); // every part's options, before the first tensor
  // A user's part may still reject its options when built: free what was built before it.
  return disposeOnThrow(() => composeHybrid(config, kind));
}

function composeHybrid(config: HybridConfig, kind: ModelKind): ModelParts {
  const registry = layerRegistry();
  const h = config.hiddenSize;
  const make = (k: PartKind, spec: PartSpec, where: string): Layer => registry.create(k, spec, h, where);
  const layers = config.layers.map((spec, i) => {
    const hasFfn = spec.ffn !== undefined && spec.ffn !== null;
    return new Block({
      placement: config.placement ?? 'pre',
      mixerNorm: make('norm', spec.mixerNorm ?? config.norm, `layers[${i}].mixerNorm`),
      mixer: make('mixer', spec.mixer, `layers[${i}].mixer`),
      ffnNorm: hasFfn ? make('norm', spec.ffnNorm ?? config.norm, `layers[${i}].ffnNorm`) : undefined,
      ffn: hasFfn ? make('ffn', spec.ffn!, `layers[${i}].ffn`) : undefined,
    });
  });
  const finalNorm = config.finalNorm === null ? undefined : make('norm', config.finalNorm ?? config.norm, 'finalNorm');
  const e = config.embeddings ?? {};
  return {
    embeddings: new Embeddings({
      vocabSize: config.vocabSize,
      hiddenSize: h,
      maxPositions: e.maxPositions,
      typeVocabSize: e.typeVocabSize,
      norm: e.norm === undefined ? undefined : embeddingNorm(e.norm),
    }),
    layers,
    finalNorm,
    pooler: kind === 'encoder' && config.pooler ? new Pooler(h) : undefined,
    lmHead: lmHeadFor(kind, config.tieWordEmbeddings ?? false, h, config.vocabSize),
  };
}

/**
 * Tessera's own format: `config.json` holds a {@link HybridConfig} with
 * `model_type: "tessera-hybrid"`, and the weights carry Tessera's parameter paths, so the
 * rename table is the identity.
 */
export const hybrid: Architecture<HybridConfig> = {
  name: 'hybrid',
  modelTypes: [HYBRID_MODEL_TYPE],
  kinds: ['encoder', 'decoder', 'causal-lm'],
  parseConfig: parseHybridConfig,
  estimateSize: checkHybrid,
  sizeKeys: ['vocabSize', 'hiddenSize'],
  build: buildHybrid,
  hfNames: [[/^(.*)$/, '$1']],
};
