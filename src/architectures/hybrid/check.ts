import type { NormSpec } from '../../layers/norm.js';
import type { PartSpec } from '../../layers/registry.js';
import type { ModelKind } from '../architecture.js';
import { CONFIG_LIMITS, ConfigError, ConfigReader } from '../config-keys.js';
import { SizeTally, type ModelSize } from '../size.js';
import { checkConfigKeys, checkHybridKeys, HYBRID_MODEL_TYPE, type HybridConfig } from './config.js';
import { checkPart } from './parts.js';

/** The embeddings' norm as a {@link NormSpec} (Embeddings builds it itself, so only these two kinds). */
export function embeddingNorm(spec: PartSpec): NormSpec {
  if (spec.type !== 'layernorm' && spec.type !== 'rmsnorm') {
    throw new ConfigError(`embeddings.norm: '${spec.type}' is not supported here; use 'layernorm' or 'rmsnorm'`);
  }
  checkConfigKeys(spec, ['type', 'eps'], `hybrid config embeddings.norm (${spec.type})`);
  const fallback = spec.type === 'layernorm' ? 1e-5 : 1e-6;
  return { kind: spec.type, eps: new ConfigReader(spec, 'embeddings.norm').positive('eps', fallback) };
}

/**
 * Check a whole hybrid config — sizes, layer count, every built-in part's options — and count
 * what building it as `kind` would allocate, all before any tensor exists. `buildHybrid` runs it
 * first, so a bad layer 30 cannot leave layers 0-29 allocated; loaders compare the count with
 * the memory limit. Parts registered by users count as zero (their size is unknown here).
 */
export function checkHybrid(config: HybridConfig, kind: ModelKind): ModelSize {
  // Again here: buildHybrid takes configs that never went through parseHybridConfig.
  checkHybridKeys(config as unknown as Record<string, unknown>);
  const c = new ConfigReader(config as unknown as Record<string, unknown>, HYBRID_MODEL_TYPE);
  const h = c.size('hiddenSize');
  const vocabSize = c.size('vocabSize');
  if (!Array.isArray(config.layers) || config.layers.length === 0) throw c.error('layers', 'must be a non-empty list of layer specs');
  if (config.layers.length > CONFIG_LIMITS.layers) throw c.error('layers', `has ${config.layers.length} layers, more than Tessera's bound of ${CONFIG_LIMITS.layers}`);
  const t = new SizeTally();
  const e = new ConfigReader((config.embeddings ?? {}) as Record<string, unknown>, 'embeddings');
  t.embeddings({
    vocabSize,
    hiddenSize: h,
    maxPositions: e.has('maxPositions') ? e.size('maxPositions') : undefined,
    typeVocabSize: e.has('typeVocabSize') ? e.size('typeVocabSize') : undefined,
    norm: config.embeddings?.norm === undefined ? undefined : embeddingNorm(config.embeddings.norm),
  });
  config.layers.forEach((spec, i) => {
    if (typeof spec !== 'object' || spec === null) throw c.error(`layers[${i}]`, 'must be an object');
    checkPart('norm', spec.mixerNorm ?? config.norm, h, `layers[${i}].mixerNorm`, t);
    checkPart('mixer', spec.mixer, h, `layers[${i}].mixer`, t);
    if (spec.ffn !== undefined && spec.ffn !== null) {
      checkPart('norm', spec.ffnNorm ?? config.norm, h, `layers[${i}].ffnNorm`, t);
      checkPart('ffn', spec.ffn, h, `layers[${i}].ffn`, t);
    }
  });
  if (config.finalNorm !== null) checkPart('norm', config.finalNorm ?? config.norm, h, 'finalNorm', t);
  if (kind === 'encoder' && config.pooler === true) t.linear(h, h, true);
  return t.lmHead(kind, config.tieWordEmbeddings ?? false, h, vocabSize);
}
