import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { sample } from '../../src/generation/sampling.js';

/**
 * The definition `sample` keeps: every id sorted by decreasing logit (ties by id), the top-k cut,
 * softmax weights at the temperature, the smallest prefix reaching top-p, then the draw `r`.
 */
function definition(logits: Float32Array, temperature: number, topK: number | undefined, topP: number, r: number): number {
  let order = Array.from(logits.keys()).sort((a, b) => logits[b]! - logits[a]! || a - b);
  if (topK !== undefined && topK < order.length) order = order.slice(0, topK);
  const top = logits[order[0]!]! / temperature;
  const weights = order.map((i) => Math.exp(logits[i]! / temperature - top));
  const total = weights.reduce((s, w) => s + w, 0);
  let keep = weights.length;
  if (topP < 1) {
    let mass = 0;
    for (let i = 0; i < weights.length; i++) {
      mass += weights[i]! / total;
      if (mass >= topP) {
        keep = i + 1;
        break;
      }
    }
  }
  const kept = weights.slice(0, keep);
  let target = r * kept.reduce((s, w) => s + w, 0);
  for (let i = 0; i < kept.length; i++) {
    target -= kept[i]!;
    if (target < 0) return order[i]!;
  }
  return order[keep - 1]!;
}

/** Logits with many ties, signed zeros and -Infinity (never all of them: generate checks that first). */
const row = fc
  .array(fc.oneof(fc.constantFrom(-3, -1, -0, 0, 0.5, 2, -Infinity), fc.float({ min: -20, max: 20, noNaN: true })), { minLength: 1, maxLength: 300 })
  .filter((values) => values.some((v) => v !== -Infinity))
  .map((values) => Float32Array.from(values));

describe('sampling a token', () => {
  it('draws the token the sort-everything definition draws, with and without top-k and top-p', () => {
    fc.assert(
      fc.property(
        row,
        fc.constantFrom(0.5, 1, 1.7),
        fc.option(fc.integer({ min: 1, max: 320 }), { nil: undefined }),
        fc.constantFrom(1, 0.9, 0.5, 0.05),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (logits, temperature, topK, topP, r) => {
          expect(sample(logits, temperature, topK, topP, r)).toBe(definition(logits, temperature, topK, topP, r));
        },
      ),
      { numRuns: 2000, seed: 11 },
    );
  });

  it('ranks ties by id and -0 as +0 in a vocabulary-sized row, where the fast paths run', () => {
    const logits = new Float32Array(32000).map((_, i) => Math.round(Math.sin(i * 0.37) * 4) / 2);
    logits[31999] = -0;
    logits[7] = -Infinity;
    for (const [topK, topP] of [[undefined, 1], [undefined, 0.3], [50, 1], [50, 0.8], [1, 1]] as const) {
      for (const r of [0, 0.123, 0.5, 0.999]) expect(sample(logits, 1, topK, topP, r)).toBe(definition(logits, 1, topK, topP, r));
    }
  });
});
