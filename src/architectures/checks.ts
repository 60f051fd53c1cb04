import { CONFIG_LIMITS, type ConfigReader } from './config-keys.js';
import { defaultDtRank } from '../layers/mamba.js';

/** Checks on config values that several architectures (and hybrid parts) share. */

/** The config keys of an attention's sizes (HF's snake_case by default; hybrid parts are camelCase). */
export interface HeadKeys {
  hidden: string;
  heads: string;
  kvHeads: string;
  /** The key that sets the per-head width explicitly, where the format has one. */
  headDim?: string;
}

const HF_KEYS: HeadKeys = { hidden: 'hidden_size', heads: 'num_attention_heads', kvHeads: 'num_key_value_heads' };

/**
 * The divisibility attention needs, checked on the keys the user wrote: query heads must split
 * into equal groups per key/value head, and without an explicit head width the hidden size must
 * split evenly into heads (the derived `hidden / heads` is not a key the user could fix).
 */
export function checkHeads(c: ConfigReader, hidden: number, heads: number, o: { kvHeads?: number; headDimGiven?: boolean; keys?: HeadKeys } = {}): void {
  const k = o.keys ?? HF_KEYS;
  if (o.kvHeads !== undefined && heads % o.kvHeads !== 0) {
    throw c.error(k.heads, `(${heads}) must be a multiple of '${k.kvHeads}' (${o.kvHeads}): each key/value head serves an equal group of query heads`);
  }
  if (!o.headDimGiven && hidden % heads !== 0) {
    const fix = k.headDim === undefined ? '' : `, or set '${k.headDim}'`;
    throw c.error(k.hidden, `(${hidden}) is not divisible by '${k.heads}' (${heads}); choose a head count that divides it${fix}`);
  }
}

/** The inner width expand × hidden, bounded like any dimension; the error names both keys. */
export function innerWidth(c: ConfigReader, expand: number, hiddenSize: number, expandKey: string, hiddenKey: string): number {
  const inner = expand * hiddenSize;
  if (inner > CONFIG_LIMITS.dimension) {
    throw c.error(expandKey, `× '${hiddenKey}' (${expand} × ${hiddenSize} = ${inner}) is the Mamba inner width, above Tessera's bound on any dimension (${CONFIG_LIMITS.dimension})`);
  }
  return inner;
}

/**
 * `dt_rank`: `"auto"` (ceil(hidden / 16), as HF and mamba_ssm compute it) or an integer size.
 * `hiddenKey` is named when the derived rank is out of range.
 */
export function readDtRank(c: ConfigReader, raw: Record<string, unknown>, key: string, hiddenSize: number): number {
  const v = raw[key] ?? 'auto';
  if (v === 'auto') return defaultDtRank(hiddenSize);
  if (typeof v === 'string') throw c.error(key, `must be "auto" or an integer, got ${JSON.stringify(v)}`);
  return c.size(key);
}
