import type { Block } from '../../layers/block.js';
import type { Layer } from '../../layers/module.js';
import { layerRegistry, type PartKind, type PartSpec } from '../../layers/registry.js';
import { CausalLM } from '../../models/causal-lm.js';
import { EncoderModel } from '../../models/encoder.js';
import type { TransformerModel } from '../../models/transformer.js';
import type { HybridConfig, LayerSpec } from './config.js';
import './parts.js';

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

/**
 * The {@link HybridConfig} that rebuilds `model` (same blocks, same parameter paths), read off
 * its module tree. Works for any model made of registered parts: one loaded from HF, one built
 * from a hybrid config, or one a user composed. Per-layer norms are written only where they
 * differ from the model-wide `norm`.
 */
export function describeModel(model: TransformerModel): HybridConfig {
  const registry = layerRegistry();
  const describe = (kind: PartKind, layer: Layer, where: string): PartSpec => {
    const spec = registry.describe(kind, layer);
    if (spec === undefined) {
      throw new Error(
        `cannot describe '${where}' (${layer.constructor.name}): no registered ${kind} recognises it; ` +
          `register it with layerRegistry().register('${kind}', name, create, describe)`,
      );
    }
    return spec;
  };
  const blocks: Block[] = model.layers.items;
  if (blocks.length === 0) throw new Error('cannot describe a model without layers');
  const placement = blocks[0]!.placement;
  const norm = describe('norm', blocks[0]!.mixerNorm, 'layers.0.mixerNorm');
  const layers = blocks.map((block, i): LayerSpec => {
    if (block.placement !== placement) throw new Error(`layers.${i} is ${block.placement}-norm but layers.0 is ${placement}-norm; a hybrid config has one placement`);
    const spec: LayerSpec = { mixer: describe('mixer', block.mixer, `layers.${i}.mixer`) };
    const mixerNorm = describe('norm', block.mixerNorm, `layers.${i}.mixerNorm`);
    if (!same(mixerNorm, norm)) spec.mixerNorm = mixerNorm;
    if (block.ffn !== undefined && block.ffnNorm !== undefined) {
      spec.ffn = describe('ffn', block.ffn, `layers.${i}.ffn`);
      const ffnNorm = describe('norm', block.ffnNorm, `layers.${i}.ffnNorm`);
      if (!same(ffnNorm, norm)) spec.ffnNorm = ffnNorm;
    }
    return spec;
  });
  const config: HybridConfig = {
    vocabSize: model.embeddings.word.count,
    hiddenSize: model.embeddings.word.dim,
    norm,
    placement,
    layers,
  };
  if (model.finalNorm === undefined) config.finalNorm = null;
  else {
    const finalNorm = describe('norm', model.finalNorm, 'finalNorm');
    if (!same(finalNorm, norm)) config.finalNorm = finalNorm;
  }
  const { position, tokenType, norm: embeddingNorm } = model.embeddings;
  if (position !== undefined || tokenType !== undefined || embeddingNorm !== undefined) {
    config.embeddings = {
      maxPositions: position?.count,
      typeVocabSize: tokenType?.count,
      norm: embeddingNorm === undefined ? undefined : describe('norm', embeddingNorm, 'embeddings.norm'),
    };
  }
  if (model instanceof CausalLM) config.tieWordEmbeddings = model.tiedEmbeddings;
  if (model instanceof EncoderModel && model.pooler !== undefined) config.pooler = true;
  return config;
}
