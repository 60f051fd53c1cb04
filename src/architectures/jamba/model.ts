import type { Architecture } from '../architecture.js';
import type { HybridConfig, LayerSpec } from '../hybrid/config.js';
import { buildHybrid } from '../hybrid/model.js';
import { everyNth } from '../hybrid/pattern.js';
import { checkHybrid } from '../hybrid/check.js';
import { JAMBA_SIZE_KEYS, parseJambaConfig, type JambaConfig, jambaHfConfig } from './config.js';
import { jambaHfNames, jambaNames } from './hf.js';

/**
 * Jamba as a hybrid config: pre-norm RMSNorm blocks whose mixer is attention (GQA, causal, no
 * positional encoding) every `attn_layer_period` layers and Mamba (with RMSNorms on Δ, B and C)
 * elsewhere; the feed-forward is a gated SiLU MLP, or a mixture of such experts on the layers
 * `expert_layer_period`/`expert_layer_offset` select when `num_experts` > 1.
 */
export function jambaToHybrid(c: JambaConfig): HybridConfig {
  const attention: LayerSpec = {
    mixer: { type: 'attention', numHeads: c.numHeads, numKvHeads: c.numKvHeads, causal: true },
  };
  const mamba: LayerSpec = {
    mixer: {
      type: 'mamba',
      stateSize: c.mambaStateSize,
      convKernel: c.mambaConvKernel,
      expand: c.mambaExpand,
      dtRank: c.mambaDtRank,
      convBias: c.mambaConvBias,
      projBias: c.mambaProjBias,
      innerNormEps: c.rmsNormEps,
    },
  };
  const dense = { type: 'gated', intermediateSize: c.intermediateSize, activation: c.hiddenAct };
  const moe = { type: 'moe', numExperts: c.numExperts, topK: c.numExpertsPerTok, intermediateSize: c.intermediateSize, activation: c.hiddenAct };
  const layers = everyNth(c.numLayers, { every: c.attnLayerPeriod, offset: c.attnLayerOffset, layer: attention, otherwise: mamba });
  layers.forEach((layer, i) => {
    const experts = c.numExperts > 1 && i % c.expertLayerPeriod === c.expertLayerOffset;
    layer.ffn = experts ? moe : dense;
  });
  return {
    vocabSize: c.vocabSize,
    hiddenSize: c.hiddenSize,
    norm: { type: 'rmsnorm', eps: c.rmsNormEps },
    tieWordEmbeddings: c.tieWordEmbeddings,
    layers,
  };
}

/** HF `JambaForCausalLM` checkpoints (`model_type: "jamba"`), built as a hybrid. */
export const jamba: Architecture<JambaConfig> = {
  name: 'jamba',
  modelTypes: ['jamba'],
  kinds: ['decoder', 'causal-lm'],
  parseConfig: parseJambaConfig,
  hfNames: jambaHfNames,
  hfExport: { names: jambaNames, config: jambaHfConfig },
  sizeKeys: JAMBA_SIZE_KEYS,
  estimateSize: (config, kind) => checkHybrid(jambaToHybrid(config), kind),
  build: (config, kind) => buildHybrid(jambaToHybrid(config), kind),
};
