import { defaultDtRank, MAMBA_DEFAULTS } from '../../layers/mamba.js';
import type { HybridConfig, LayerSpec } from '../hybrid/config.js';
import type { JambaConfig } from './config.js';
import { jambaToHybrid } from './model.js';

/** A hybrid read as Jamba: its Jamba config, or why it is not one. */
export type JambaReading = { config: JambaConfig } | { reason: string };

/**
 * Read a hybrid config (as {@link describeModel} gives it) as a Jamba config: the attention
 * layers and the mixture-of-experts layers must each sit where one period and offset put them,
 * and everything else must be what Jamba builds. The test is exact: the hybrid is Jamba only if
 * {@link jambaToHybrid} of the config read gives the same hybrid back; otherwise the reason names
 * the first place they differ.
 */
export function jambaFromHybrid(hybrid: HybridConfig): JambaReading {
  const layers = hybrid.layers;
  const attentionAt = indicesWhere(layers, (l) => l.mixer.type === 'attention');
  const expertsAt = indicesWhere(layers, (l) => l.ffn?.type === 'moe');
  const attentionPlace = periodAndOffset(attentionAt, layers.length);
  if (attentionPlace === undefined) return { reason: `its attention layers (${attentionAt.join(', ')}) are not every n-th layer from one offset, as Jamba's attn_layer_period/attn_layer_offset place them` };
  const expertPlace = expertsAt.length === 0 ? { period: 2, offset: 1 } : periodAndOffset(expertsAt, layers.length);
  if (expertPlace === undefined) return { reason: `its mixture-of-experts layers (${expertsAt.join(', ')}) are not every n-th layer from one offset, as Jamba's expert_layer_period/expert_layer_offset place them` };
  const attention = layers.find((l) => l.mixer.type === 'attention')?.mixer ?? ({ numHeads: 1, numKvHeads: 1 } as Record<string, unknown>);
  const mamba = layers.find((l) => l.mixer.type === 'mamba')?.mixer ?? ({} as Record<string, unknown>);
  const ffn = layers.find((l) => l.ffn !== undefined && l.ffn !== null)?.ffn ?? ({} as Record<string, unknown>);
  const moe = layers.find((l) => l.ffn?.type === 'moe')?.ffn;
  const eps = (hybrid.norm as { eps?: unknown }).eps;
  const config: JambaConfig = {
    vocabSize: hybrid.vocabSize,
    hiddenSize: hybrid.hiddenSize,
    intermediateSize: ffn.intermediateSize as number,
    numLayers: layers.length,
    numHeads: attention.numHeads as number,
    numKvHeads: (attention.numKvHeads ?? attention.numHeads) as number,
    hiddenAct: ffn.activation as string,
    rmsNormEps: eps as number,
    tieWordEmbeddings: hybrid.tieWordEmbeddings ?? false,
    attnLayerPeriod: attentionPlace.period,
    attnLayerOffset: attentionPlace.offset,
    numExperts: (moe?.numExperts as number | undefined) ?? 1,
    numExpertsPerTok: (moe?.topK as number | undefined) ?? 1,
    expertLayerPeriod: expertPlace.period,
    expertLayerOffset: expertPlace.offset,
    mambaStateSize: (mamba.stateSize as number | undefined) ?? MAMBA_DEFAULTS.stateSize,
    mambaConvKernel: (mamba.convKernel as number | undefined) ?? MAMBA_DEFAULTS.convKernel,
    mambaExpand: (mamba.expand as number | undefined) ?? MAMBA_DEFAULTS.expand,
    mambaDtRank: (mamba.dtRank as number | undefined) ?? defaultDtRank(hybrid.hiddenSize),
    mambaConvBias: (mamba.convBias as boolean | undefined) ?? MAMBA_DEFAULTS.convBias,
    mambaProjBias: (mamba.projBias as boolean | undefined) ?? MAMBA_DEFAULTS.projBias,
  };
  const difference = firstDifference(withDefaults(jambaToHybrid(config)), withDefaults(hybrid), '');
  return difference === undefined ? { config } : { reason: `it differs from the Jamba it would be at ${difference}` };
}

/**
 * `config` with every default of the parts Jamba uses written out, so that a value left to its
 * default and the same value written compare equal (the defaults are the hybrid parts' own).
 */
function withDefaults(config: HybridConfig): HybridConfig {
  const h = config.hiddenSize;
  const defaults: Record<string, (spec: Record<string, unknown>) => Record<string, unknown>> = {
    mamba: () => ({ ...MAMBA_DEFAULTS, dtRank: defaultDtRank(h) }),
    attention: (spec) => ({ numKvHeads: spec.numHeads, headDim: h / (spec.numHeads as number), qkvBias: false, outputBias: false, causal: true }),
    gated: () => ({ activation: 'silu', bias: false }),
    moe: () => ({ activation: 'silu', renormalize: false }),
  };
  const fill = (spec: LayerSpec['mixer'] | null | undefined) => {
    if (spec === undefined || spec === null) return spec;
    const d = defaults[spec.type]?.(spec) ?? {};
    // A key present but undefined (an absent option read back) takes the default too.
    const given = Object.fromEntries(Object.entries(spec).filter(([, v]) => v !== undefined));
    return { ...d, ...given } as LayerSpec['mixer'];
  };
  return {
    ...config,
    placement: config.placement ?? 'pre',
    tieWordEmbeddings: config.tieWordEmbeddings ?? false,
    finalNorm: config.finalNorm === undefined ? config.norm : config.finalNorm,
    layers: config.layers.map((l) => {
      const { mixerNorm, ffnNorm, ...rest } = l;
      const filled: LayerSpec = { ...rest, mixer: fill(l.mixer)!, mixerNorm: mixerNorm ?? config.norm };
      if (l.ffn !== undefined && l.ffn !== null) {
        filled.ffn = fill(l.ffn);
        filled.ffnNorm = ffnNorm ?? config.norm;
      }
      return filled;
    }),
  };
}

function indicesWhere(layers: readonly LayerSpec[], test: (l: LayerSpec) => boolean): number[] {
  return layers.flatMap((l, i) => (test(l) ? [i] : []));
}

/** The smallest period (and its offset) that selects exactly `indices` among `count` layers. */
function periodAndOffset(indices: readonly number[], count: number): { period: number; offset: number } | undefined {
  // No such layer: a period longer than the model, its one slot past the last layer.
  if (indices.length === 0) return { period: count + 1, offset: count };
  for (let period = 1; period <= count; period++) {
    const offset = indices[0]! % period;
    if (offset !== indices[0]) continue;
    const selected = Array.from({ length: count }, (_, i) => i).filter((i) => i % period === offset);
    if (selected.length === indices.length && selected.every((v, i) => v === indices[i])) return { period, offset };
  }
  return undefined;
}

/** The path of the first value that differs between `jamba` and `hybrid`, with both values; undefined when equal. */
function firstDifference(jamba: unknown, hybrid: unknown, path: string): string | undefined {
  if (typeof jamba === 'object' && jamba !== null && typeof hybrid === 'object' && hybrid !== null) {
    const keys = new Set([...Object.keys(jamba), ...Object.keys(hybrid)]);
    for (const key of keys) {
      const here = Array.isArray(jamba) ? `${path}[${key}]` : path === '' ? key : `${path}.${key}`;
      const found = firstDifference((jamba as Record<string, unknown>)[key], (hybrid as Record<string, unknown>)[key], here);
      if (found !== undefined) return found;
    }
    return undefined;
  }
  if (jamba === hybrid) return undefined;
  const show = (v: unknown): string => (v === undefined ? 'nothing' : JSON.stringify(v));
  return `'${path}': the model has ${show(hybrid)}, Jamba ${show(jamba)}`;
}
