// The packed-weight GEMVs (native/src/quant.c: four weight rows at a time, then one-row leftovers)
// and the thread pool they run on (native/src/parallel.c: parts claimed by whichever thread is free).
import { afterAll, describe, expect, it } from 'vitest';

import { loadAddon, type NativeAddon } from '../../src/kernels/native/addon.js';
import { PACKED_DTYPES } from '../../src/kernels/contract.js';
import { built, expectClose, packWeights, randoms } from './helpers.js';

/** The addon's test probe of tessera_parallel_for (quant-binding.c). */
type Probe = (n: number, grain: number, threads: number, innerN: number, begins: Int32Array, visits: Int32Array, inner: Int32Array) => void;

const describeNative = built ? describe : describe.skip;
const ISAS = ['portable', 'avx2', 'avx512'];

describeNative('packed-weight GEMVs (quant.c) on every vector path', () => {
  const addon = built ? loadAddon() : (undefined as unknown as NativeAddon);
  const bestIsa = built ? addon.quantIsa() : 'portable';
  const isas = ISAS.slice(0, ISAS.indexOf(bestIsa) + 1);
  const threads = built ? addon.getNumThreads() : 1;
  afterAll(() => {
    if (!built) return;
    addon.quantIsa(bestIsa);
    addon.setNumThreads(threads);
  });

  for (const dtype of PACKED_DTYPES) {
    it(`${dtype}: 1-4 rows of x on each path match the portable path and a float32 matmul of the widened weights, tails included`, () => {
      // n around multiples of 4 (the four-row blocks and their leftovers), in around the vector widths and past
      // the longest x that bf16's one-row loop deinterleaves (8192; longer takes the four-row loop).
      const sizes = [[1, 1], [15, 3], [16, 4], [17, 5], [31, 7], [32, 8], [33, 9], [63, 13], [64, 4], [65, 6], [200, 11], [769, 23], [8200, 5]] as const;
      for (const [inF, n] of sizes) {
        const seed = inF * 100 + n;
        const w = randoms(n * inF, seed);
        const bias = randoms(n, seed + 1);
        const { kind, data, scales, widened } = packWeights(addon, dtype, w, n, inF);
        for (const rows of [1, 2, 3, 4]) {
          const x = randoms(rows * inF, seed + rows + 2);
          const float32 = new Float32Array(rows * n);
          addon.ffnLinear(x, widened, bias, float32, inF, n, 0);
          const atol = 2e-6 * (inF + 1);
          expect(addon.quantIsa('portable')).toBe('portable');
          const portable = new Float32Array(rows * n);
          addon.quantLinear(x, kind, data, scales, bias, portable, inF, n, 0);
          for (const isa of isas) {
            expect(addon.quantIsa(isa)).toBe(isa);
            const out = new Float32Array(rows * n);
            addon.quantLinear(x, kind, data, scales, bias, out, inF, n, 0);
            expectClose(out, portable, atol, 1e-5);
            expectClose(out, float32, atol, 1e-5);
            // Each row of x gives what it gives alone: the rows share the weight reads, not the sums.
            for (let i = 0; i < rows; i++) {
              const alone = new Float32Array(n);
              addon.quantLinear(x.subarray(i * inF, (i + 1) * inF), kind, data, scales, bias, alone, inF, n, 0);
              expect(out.subarray(i * n, (i + 1) * n)).toEqual(alone);
            }
          }
        }
      }
    });
  }

  it('gives the same bits on 1, 2, 3 and 8 threads on every path (each row summed alike wherever a part begins)', () => {
    // 300 x 769 and 2100 x 100 weights split into parts of a few hundred rows, not multiples of 4.
    for (const [inF, n] of [[769, 300], [100, 2100]] as const) {
      for (const dtype of PACKED_DTYPES) {
        const { kind, data, scales } = packWeights(addon, dtype, randoms(n * inF, n), n, inF);
        for (const isa of isas) {
          expect(addon.quantIsa(isa)).toBe(isa);
          for (const rows of [1, 3]) {
            const x = randoms(rows * inF, rows);
            const results = [1, 2, 3, 8].map((t) => {
              addon.setNumThreads(t);
              const out = new Float32Array(rows * n);
              for (let call = 0; call < 20; call++) addon.quantLinear(x, kind, data, scales, null, out, inF, n, 0);
              return out;
            });
            addon.setNumThreads(threads);
            for (const r of results.slice(1)) expect(r).toEqual(results[0]);
          }
        }
      }
    }
  });
});

describeNative('the thread pool (parallel.c) through its probe', () => {
  const addon = built ? loadAddon() : (undefined as unknown as NativeAddon);
  const probe = built ? ((addon as unknown as { parallelForProbe: Probe }).parallelForProbe) : (undefined as unknown as Probe);

  /** The parts a call makes: as many as `threads` allows with at least `grain` indices each. */
  const partsOf = (n: number, grain: number, threads: number): number => Math.max(1, Math.min(Math.floor(n / Math.max(grain, 1)), threads, 64));

  it('covers every index exactly once, in the contiguous parts n·i/parts, over thousands of calls on up to 8 threads', () => {
    for (const threads of [1, 2, 3, 8]) {
      for (const [n, grain] of [[0, 1], [1, 1], [5, 1], [7, 2], [1000, 10], [1000, 400], [1000, 2000], [97, 1]] as const) {
        const parts = partsOf(n, grain, threads);
        const expected = new Int32Array(n);
        for (let p = 0; p < parts; p++) expected.fill(Math.floor((n * p) / parts), Math.floor((n * p) / parts), Math.floor((n * (p + 1)) / parts));
        const begins = new Int32Array(n).fill(-1);
        const visits = new Int32Array(n);
        const calls = 300;
        for (let call = 0; call < calls; call++) probe(n, grain, threads, 0, begins, visits, new Int32Array(n));
        expect(begins, `n ${n}, grain ${grain}, ${threads} threads`).toEqual(expected);
        expect(visits.every((v) => v === calls)).toBe(true);
      }
    }
  });

  it('runs a call made from inside a part on that thread, covering its range once per part', () => {
    for (const threads of [2, 4]) {
      const n = 64;
      const inner = new Int32Array(n);
      const visits = new Int32Array(n);
      probe(n, 1, threads, 33, new Int32Array(n), visits, inner);
      const parts = partsOf(n, 1, threads);
      const firsts = Array.from({ length: parts }, (_, p) => Math.floor((n * p) / parts));
      for (let i = 0; i < n; i++) expect(inner[i], `index ${i}`).toBe(firsts.includes(i) ? 33 : 0);
      expect(visits.every((v) => v === 1)).toBe(true);
    }
  });

  it('refuses arrays shorter than n, naming them', () => {
    expect(() => probe(10, 1, 2, 0, new Int32Array(5), new Int32Array(10), new Int32Array(10))).toThrow(/arrays must hold n = 10 values/);
    expect(() => probe(10, 1, 2, 0, new Float32Array(10) as unknown as Int32Array, new Int32Array(10), new Int32Array(10))).toThrow(/begins/);
  });
});

describeNative("the thread pool's read-ahead between GEMVs (parallel.c)", () => {
  const addon = built ? loadAddon() : (undefined as unknown as NativeAddon);
  const threads = built ? addon.getNumThreads() : 1;
  afterAll(() => {
    if (!built) return;
    addon.setReadAhead(true);
    addon.setNumThreads(threads);
  });

  /** Three GEMVs of different weights, as a decode step calls them: one bf16 map, an int8 and a float32 map, a float32 map. */
  function step() {
    const inF = 96;
    const a = packWeights(addon, 'bfloat16', randoms(40 * inF, 1), 40, inF);
    const b = packWeights(addon, 'int8', randoms(24 * inF, 2), 24, inF);
    const c = randoms(56 * inF, 3);
    const d = randoms(40 * inF, 5);
    const x = randoms(inF, 4);
    const outs = [new Float32Array(40), new Float32Array(24), new Float32Array(56), new Float32Array(40)];
    const calls = [
      () => addon.quantLinear(x, a.kind, a.data, a.scales, null, outs[0]!, inF, 40, 0),
      () => addon.linearMany(x, inF, Int32Array.of(b.kind, -1), [b.data, c], [b.scales, null], [null, null], [outs[1]!, outs[2]!]),
      () => addon.linearMany(x, inF, Int32Array.of(-1), [d], [null], [null], [outs[3]!]),
    ];
    // Bytes each call reads: what the read-ahead publishes for the call after it.
    const reads = [[40 * inF * 2], [24 * inF, 56 * inF * 4], [40 * inF * 4]];
    return { calls, reads, outs };
  }

  it('publishes, after each call, the regions of the call that followed it last time', () => {
    for (const t of [1, 2]) {
      addon.setNumThreads(t);
      const { calls, reads } = step();
      for (const call of calls) call(); // the first step only learns the order
      for (let round = 0; round < 3; round++) {
        for (let i = 0; i < calls.length; i++) {
          const before = addon.readAheadPublished().seq;
          calls[i]!();
          const published = addon.readAheadPublished();
          // Nothing has followed the last call yet (but an earlier test's weights may have had its address).
          if (round === 0 && i === calls.length - 1) continue;
          expect(published.seq, `${t} threads, call ${i}`).toBe(before + 1);
          expect(published.bytes, `${t} threads, call ${i}`).toEqual(reads[(i + 1) % calls.length]);
        }
      }
    }
  });

  it("remembers every call's successor over a step as long as a model's (120 weights), none evicting another", () => {
    addon.setNumThreads(2);
    const inF = 64;
    const x = randoms(inF, 9);
    const calls = Array.from({ length: 120 }, (_, i) => {
      const w = randoms(8 * inF, 100 + i);
      const out = new Float32Array(8);
      return () => addon.linearMany(x, inF, Int32Array.of(-1), [w], [null], [null], [out]);
    });
    for (const call of calls) call(); // learn the order
    let missed = 0;
    for (let round = 0; round < 2; round++) {
      for (const call of calls) {
        const before = addon.readAheadPublished().seq;
        call();
        if (addon.readAheadPublished().seq !== before + 1) missed++;
      }
    }
    expect(missed).toBe(0);
  });

  it('publishes nothing while off, and the GEMVs give the same bits with it on and off', () => {
    addon.setNumThreads(2);
    const { calls, outs } = step();
    const results: Float32Array[][] = [];
    for (const on of [true, false, true]) {
      addon.setReadAhead(on);
      for (let round = 0; round < 20; round++) {
        const before = addon.readAheadPublished().seq;
        for (const call of calls) call();
        if (!on) expect(addon.readAheadPublished().seq).toBe(before);
      }
      results.push(outs.map((o) => Float32Array.from(o)));
    }
    expect(results[1]).toEqual(results[0]);
    expect(results[2]).toEqual(results[0]);
  });

  it('refuses a setReadAhead argument that is not a boolean', () => {
    expect(() => addon.setReadAhead(1 as unknown as boolean)).toThrow(/setReadAhead: on must be a boolean/);
  });
});
