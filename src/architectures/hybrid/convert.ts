import type { Module } from '../../layers/module.js';
import { checkKeys, type KeyList } from '../../util/options.js';
import type { PartSpec } from '../../layers/registry.js';
import { CausalLM } from '../../models/causal-lm.js';
import type { HybridConfig, LayerSpec } from './config.js';
import { describeModel } from './describe.js';
import { buildHybrid } from './model.js';

/** What {@link copyMatchingWeights} did: parameters copied, and those left as initialised. */
export interface WeightCopyReport {
  copied: string[];
  fresh: string[];
}

/**
 * Copy every parameter of `source` into the parameter of `target` with the same path and shape.
 * Returns which target parameters were copied and which kept their fresh initialisation.
 */
export function copyMatchingWeights(source: Module, target: Module): WeightCopyReport {
  const from = new Map(source.namedParameters());
  const report: WeightCopyReport = { copied: [], fresh: [] };
  for (const [path, param] of target.namedParameters()) {
    const value = from.get(path);
    if (value !== undefined && value.shape.join() === param.shape.join()) {
      param.assign(value);
      report.copied.push(path);
    } else {
      report.fresh.push(path);
    }
  }
  return report;
}

/** How to turn a pure model into a hybrid: per layer index, a new mixer, or a whole new layer spec. */
export interface HybridEdits {
  /** Replace the mixer of these layers (their norms and feed-forwards are kept). */
  mixers?: Record<number, PartSpec>;
  /** Replace these layers outright. */
  layers?: Record<number, LayerSpec>;
}

const HYBRID_EDIT_KEYS = { mixers: true, layers: true } as const satisfies KeyList<HybridEdits>;

/**
 * A hybrid initialised from `source` (any causal LM of registered parts, e.g. Llama): its
 * description with the edited layers swapped in, every other parameter copied from `source`,
 * and the new parts freshly initialised. This is the starting point for distilling attention
 * layers into Mamba: `toHybrid(llama, { mixers: { 1: { type: 'mamba' } } })`.
 */
export function toHybrid(source: CausalLM, edits: HybridEdits): { model: CausalLM<HybridConfig> } & WeightCopyReport {
  checkKeys(edits, HYBRID_EDIT_KEYS, 'toHybrid edits');
  const config = describeModel(source);
  const check = (i: number): number => {
    if (!Number.isInteger(i) || i < 0 || i >= config.layers.length) {
      throw new Error(`toHybrid: layer ${i} does not exist; the model has layers 0..${config.layers.length - 1}`);
    }
    return i;
  };
  for (const [i, mixer] of Object.entries(edits.mixers ?? {})) config.layers[check(Number(i))]!.mixer = mixer;
  for (const [i, layer] of Object.entries(edits.layers ?? {})) config.layers[check(Number(i))] = layer;
  const model = new CausalLM(buildHybrid(config, 'causal-lm'), config, 'hybrid');
  return { model, ...copyMatchingWeights(source, model) };
}
