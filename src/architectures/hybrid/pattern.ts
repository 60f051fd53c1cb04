import { checkKeys, type KeyList } from '../../util/options.js';
import type { LayerSpec } from './config.js';

/** Options of {@link everyNth}. */
export interface EveryNthOptions {
  /** The period: layer `i` is `layer` when `i % every === offset`. */
  every: number;
  /** Default 0. */
  offset?: number;
  layer: LayerSpec;
  otherwise: LayerSpec;
}

const EVERY_NTH_KEYS = { every: true, offset: true, layer: true, otherwise: true } as const satisfies KeyList<EveryNthOptions>;

/**
 * `count` layers where layer `i` is `layer` when `i % every === offset`, else `otherwise`:
 * "attention every 4th layer" is `everyNth(8, { every: 4, offset: 3, layer: attn, otherwise: mamba })`.
 * (Jamba's `attn_layer_period`/`attn_layer_offset` mean exactly this.)
 */
export function everyNth(count: number, options: EveryNthOptions): LayerSpec[] {
  checkKeys(options, EVERY_NTH_KEYS, 'everyNth options');
  const { every, offset = 0, layer, otherwise } = options;
  if (!Number.isInteger(every) || every < 1) throw new Error(`everyNth: 'every' must be a positive integer, got ${every}`);
  if (!Number.isInteger(offset) || offset < 0 || offset >= every) {
    throw new Error(`everyNth: 'offset' must be an integer in [0, ${every - 1}], got ${offset}`);
  }
  return Array.from({ length: count }, (_, i) => structuredClone(i % every === offset ? layer : otherwise));
}

/**
 * Layers from a string, one character per layer: `fromPattern('MAMA', { M: mamba, A: attn })`.
 */
export function fromPattern(pattern: string, parts: Record<string, LayerSpec>): LayerSpec[] {
  return [...pattern].map((ch, i) => {
    const spec = parts[ch];
    if (spec === undefined) throw new Error(`fromPattern: character '${ch}' at ${i} names no layer; known: ${Object.keys(parts).join(', ')}`);
    return structuredClone(spec);
  });
}
