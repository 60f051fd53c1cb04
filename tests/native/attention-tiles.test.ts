import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';

import { loadAddon } from '../../src/kernels/native/addon.js';
import { built, randoms } from './helpers.js';

/** What one addon.attention call is given: dims as binding.c reads them, and the operands. */
interface Case {
  batch: number;
  qLen: number;
  past: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  headMajor: boolean;
  spare: number;
  causal: boolean;
  pads: number[] | null;
  seed: number;
}

const MASKED = -1e9;

function operands(c: Case) {
  const keys = c.past + c.qLen;
  const capacity = c.headMajor ? keys + c.spare : keys;
  const q = randoms(c.batch * c.qLen * c.heads * c.headDim, c.seed).map((x) => 3 * x);
  const k = randoms(c.batch * capacity * c.kvHeads * c.headDim, c.seed + 1).map((x) => 3 * x);
  const v = randoms(c.batch * capacity * c.kvHeads * c.headDim, c.seed + 2);
  const mask = c.pads === null ? null : Float32Array.from({ length: c.batch * keys }, (_, i) => (i % keys < c.pads![Math.floor(i / keys)]! ? 0 : 1));
  const layout = c.headMajor ? 1 : 0;
  const dims = Int32Array.of(c.batch, c.qLen, keys, c.heads, c.kvHeads, c.headDim, layout, layout, c.causal ? 1 : 0, capacity);
  return { q, k, v, mask, dims, keys, capacity, scale: 1 / Math.sqrt(c.headDim) };
}

/**
 * The definition, one (batch, head, query) at a time in float64, except that a masked score gets
 * -1e9 added in float32 as every path adds it: a row whose keys are all masked comes out uniform.
 */
function reference(c: Case): Float32Array {
  const { q, k, v, mask, keys, capacity, scale } = operands(c);
  const { batch, qLen, heads, kvHeads, headDim: D } = c;
  const out = new Float32Array(q.length);
  const at = (b: number, h: number, j: number) =>
    c.headMajor ? ((b * kvHeads + h) * capacity + j) * D : (b * keys + j) * kvHeads * D + h * D;
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      const kvh = Math.floor(h / (heads / kvHeads));
      for (let i = 0; i < qLen; i++) {
        const qi = (b * qLen + i) * heads * D + h * D;
        const scores = new Float64Array(keys);
        for (let j = 0; j < keys; j++) {
          let s = 0;
          for (let p = 0; p < D; p++) s += q[qi + p]! * k[at(b, kvh, j) + p]!;
          const hidden = (c.causal && j > c.past + i) || (mask !== null && mask[b * keys + j] === 0);
          scores[j] = hidden ? Math.fround(Math.fround(s * scale) + MASKED) : s * scale;
        }
        const max = Math.max(...scores);
        const e = scores.map((s) => Math.exp(s - max));
        const sum = e.reduce((x, y) => x + y, 0);
        for (let p = 0; p < D; p++) {
          let o = 0;
          for (let j = 0; j < keys; j++) o += (e[j]! / sum) * v[at(b, kvh, j) + p]!;
          out[qi + p] = o;
        }
      }
    }
  }
  return out;
}

const caseArbitrary: fc.Arbitrary<Case> = fc
  .record({
    batch: fc.integer({ min: 1, max: 3 }),
    qLen: fc.integer({ min: 2, max: 40 }),
    past: fc.integer({ min: 0, max: 24 }),
    kvHeads: fc.integer({ min: 1, max: 2 }),
    group: fc.integer({ min: 1, max: 3 }),
    headDim: fc.constantFrom(16, 32, 48, 64, 80, 128),
    headMajor: fc.boolean(),
    spare: fc.integer({ min: 0, max: 9 }),
    causal: fc.boolean(),
    padded: fc.boolean(),
    seed: fc.integer({ min: 1, max: 1000 }),
  })
  .chain((r) =>
    fc.array(fc.integer({ min: 0, max: r.past + r.qLen }), { minLength: r.batch, maxLength: r.batch }).map((pads) => ({
      batch: r.batch,
      qLen: r.qLen,
      past: r.past,
      heads: r.kvHeads * r.group,
      kvHeads: r.kvHeads,
      headDim: r.headDim,
      headMajor: r.headMajor,
      spare: r.spare,
      causal: r.causal,
      pads: r.padded ? pads : null,
      seed: r.seed,
    })),
  );

describe.skipIf(!built)('prefill attention on float32 register tiles (native/src/attention-f32.c)', () => {
  const addon = built ? loadAddon() : undefined!;
  afterEach(() => addon.attentionF32ForceAbsent(false));

  function run(c: Case, tiles: boolean): Float32Array {
    const { q, k, v, mask, dims, scale } = operands(c);
    const out = new Float32Array(q.length).fill(Number.NaN);
    addon.attentionF32ForceAbsent(!tiles);
    addon.attention(q, k, v, mask, out, dims, scale);
    return out;
  }

  function maxAbsDiff(a: Float32Array, b: Float32Array): number {
    let m = 0;
    for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
    return Number.isNaN(m) ? Infinity : m;
  }

  it('matches the definition and the BLAS path: any head size that is a multiple of 16, blocks of queries not a multiple of 8, causal or not, padding, GQA, both cache layouts', () => {
    fc.assert(
      fc.property(caseArbitrary, (c) => {
        const tiles = run(c, true);
        expect(maxAbsDiff(tiles, reference(c))).toBeLessThan(2e-5);
        expect(maxAbsDiff(tiles, run(c, false))).toBeLessThan(2e-5);
      }),
      { numRuns: 60, seed: 17 },
    );
  });

  it('covers BERT-base and Llama-small prefill shapes, where several threads split the heads', () => {
    for (const c of [
      { batch: 2, qLen: 128, past: 0, heads: 12, kvHeads: 12, headDim: 64, headMajor: false, spare: 0, causal: false, pads: [0, 37], seed: 5 },
      { batch: 1, qLen: 200, past: 0, heads: 12, kvHeads: 4, headDim: 64, headMajor: false, spare: 0, causal: true, pads: null, seed: 6 },
    ]) {
      const tiles = run(c, true);
      expect(maxAbsDiff(tiles, run(c, false))).toBeLessThan(2e-5);
      expect(maxAbsDiff(tiles, reference(c))).toBeLessThan(2e-5);
    }
  });

  it('refuses a switch that is not a boolean', () => {
    expect(() => addon.attentionF32ForceAbsent('yes' as unknown as boolean)).toThrow(/attentionF32ForceAbsent takes a boolean/);
  });
});
