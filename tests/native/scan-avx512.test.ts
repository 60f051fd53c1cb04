import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';

import { loadAddon } from '../../src/kernels/native/addon.js';
import { built, expectClose, randoms } from './helpers.js';

/** One selective scan: shapes, and whether it continues from a state. */
interface ScanCase {
  batch: number;
  len: number;
  dim: number;
  nstate: number;
  fromState: boolean;
  seed: number;
}

function scanOperands(c: ScanCase) {
  const { batch, len, dim, nstate } = c;
  return {
    u: randoms(batch * len * dim, c.seed),
    // softplus outputs: positive, some large enough that exp(delta A) leaves little of the state.
    delta: randoms(batch * len * dim, c.seed + 1).map((x) => Math.exp(2 * x)),
    A: randoms(dim * nstate, c.seed + 2).map((x) => -Math.exp(1.5 * x)),
    Bm: randoms(batch * len * nstate, c.seed + 3),
    Cm: randoms(batch * len * nstate, c.seed + 4),
    D: randoms(dim, c.seed + 5),
    h0: c.fromState ? randoms(batch * dim * nstate, c.seed + 6) : null,
  };
}

/** The definition in float64: h_t = exp(Δ_t A) h_{t-1} + Δ_t B_t u_t, y_t = C_t · h_t + D u_t. */
function reference(c: ScanCase): { y: Float64Array; h: Float64Array } {
  const { u, delta, A, Bm, Cm, D, h0 } = scanOperands(c);
  const { batch, len, dim, nstate } = c;
  const y = new Float64Array(batch * len * dim);
  const h = new Float64Array(batch * dim * nstate);
  if (h0 !== null) h.set(h0);
  for (let b = 0; b < batch; b++) {
    for (let t = 0; t < len; t++) {
      const row = b * len + t;
      for (let d = 0; d < dim; d++) {
        const dt = delta[row * dim + d]!, ut = u[row * dim + d]!;
        let acc = 0;
        for (let n = 0; n < nstate; n++) {
          const at = (b * dim + d) * nstate + n;
          h[at] = Math.exp(dt * A[d * nstate + n]!) * h[at]! + dt * Bm[row * nstate + n]! * ut;
          acc += Cm[row * nstate + n]! * h[at]!;
        }
        y[row * dim + d] = acc + D[d]! * ut;
      }
    }
  }
  return { y, h };
}

const scanCase: fc.Arbitrary<ScanCase> = fc.record({
  batch: fc.integer({ min: 1, max: 3 }),
  // 1 is a decode step (step_tasks), longer a prompt (scan_tasks).
  len: fc.oneof(fc.constant(1), fc.integer({ min: 2, max: 24 })),
  // Channel counts that leave a partial block of 16.
  dim: fc.integer({ min: 1, max: 70 }),
  // 16 keeps the states in registers; other multiples of 16 and the rest take the general loops.
  nstate: fc.constantFrom(16, 32, 48, 1, 5, 8, 17),
  fromState: fc.boolean(),
  seed: fc.integer({ min: 1, max: 1000 }),
});

describe.skipIf(!built)('the selective scan on AVX-512 (native/src/scan.c)', () => {
  const addon = built ? loadAddon() : undefined!;
  afterEach(() => addon.scanAvx512ForceAbsent(false));

  function scan(c: ScanCase, avx512: boolean): { y: Float32Array; h: Float32Array } {
    const { u, delta, A, Bm, Cm, D, h0 } = scanOperands(c);
    const y = new Float32Array(c.batch * c.len * c.dim).fill(Number.NaN);
    const h = new Float32Array(c.batch * c.dim * c.nstate).fill(Number.NaN);
    addon.scanAvx512ForceAbsent(!avx512);
    addon.selectiveScan(u, delta, A, Bm, Cm, D, h0, y, h, c.batch, c.len, c.dim, c.nstate);
    return { y, h };
  }

  it('matches the float64 definition and the generic loops: decode steps and prompts, partial channel blocks, any state size, with and without a starting state', () => {
    fc.assert(
      fc.property(scanCase, (c) => {
        const fast = scan(c, true);
        const generic = scan(c, false);
        const want = reference(c);
        expectClose(fast.y, want.y, 2e-5, 2e-5);
        expectClose(fast.h, want.h, 2e-5, 2e-5);
        expectClose(fast.y, generic.y, 2e-6, 2e-6);
        expectClose(fast.h, generic.h, 2e-6, 2e-6);
      }),
      { numRuns: 120, seed: 29 },
    );
  });

  it('gives exp its edges on both paths: a decay that underflows to 0, one that overflows to infinity, and NaN', () => {
    const c: ScanCase = { batch: 1, len: 3, dim: 20, nstate: 16, fromState: true, seed: 3 };
    for (const len of [1, 3]) {
      const shape = { ...c, len };
      const { u, delta, A, Bm, Cm, D, h0 } = scanOperands(shape);
      // Channel 0: Δ A = -200 (below the clamp) and no input; channel 1: +200 (above it); channel 2: NaN.
      A.fill(-2, 0, 16);
      A.fill(2, 16, 32);
      for (let t = 0; t < len; t++) {
        u[t * 20] = 0;
        delta[t * 20] = 100;
        delta[t * 20 + 1] = 100;
        delta[t * 20 + 2] = Number.NaN;
      }
      const run = (avx512: boolean) => {
        const y = new Float32Array(len * 20);
        const h = new Float32Array(20 * 16);
        addon.scanAvx512ForceAbsent(!avx512);
        addon.selectiveScan(u, delta, A, Bm, Cm, D, h0, y, h, 1, len, 20, 16);
        return { y, h };
      };
      const fast = run(true);
      const generic = run(false);
      expectClose(fast.y, generic.y, 2e-6, 2e-6);
      expectClose(fast.h, generic.h, 2e-6, 2e-6);
      // The underflowing channel (no input: u = 0) forgets its state entirely.
      for (let n = 0; n < 16; n++) expect([Math.abs(fast.h[n]!), Math.abs(generic.h[n]!)]).toEqual([0, 0]);
      expect(fast.h.subarray(16, 32).some((x) => !Number.isFinite(x))).toBe(true);
      expect(fast.h.subarray(32, 48).every((x) => Number.isNaN(x))).toBe(true);
    }
  });

  it('gates the mixer the same way on both paths (y · SiLU(z)), for a prompt and for the decode step after it', () => {
    const [batch, len, hidden, inner, nstate, rank, kernel] = [2, 9, 24, 40, 16, 4, 4];
    const dims = Int32Array.of(batch, len, hidden, inner, nstate, rank, kernel);
    const weights = (n: number, seed: number, scale = 0.3) => randoms(n, seed).map((x) => scale * x);
    const fixed = [
      weights(2 * inner * hidden, 11), null, weights(inner * kernel, 12), weights(inner, 13),
      weights((rank + 2 * nstate) * inner, 14), weights(inner * rank, 15), weights(inner, 16),
      randoms(inner * nstate, 17).map((x) => -Math.exp(x)), weights(inner, 18), weights(hidden * inner, 19), null,
      null, null, null, null,
    ];
    const mix = (avx512: boolean, steps: number, hiddenIn: Float32Array, convIn: Float32Array | null, ssmIn: Float32Array | null) => {
      const out = new Float32Array(batch * steps * hidden);
      const convOut = new Float32Array(batch * inner * kernel);
      const ssmOut = new Float32Array(batch * inner * nstate);
      addon.scanAvx512ForceAbsent(!avx512);
      const d = Int32Array.from(dims);
      d[1] = steps;
      addon.mambaMixer(d, [hiddenIn, null, convIn, ssmIn, ...fixed], [out, convOut, ssmOut], 1e-6, 1e-5, false);
      return { out, convOut, ssmOut };
    };
    const prompt = randoms(batch * len * hidden, 21);
    const step = randoms(batch * hidden, 22);
    const results = [true, false].map((avx512) => {
      const first = mix(avx512, len, prompt, null, null);
      const next = mix(avx512, 1, step, first.convOut, first.ssmOut);
      return [first.out, first.ssmOut, next.out, next.ssmOut];
    });
    for (let i = 0; i < 4; i++) {
      expect(results[0]![i]!.some((x) => x !== 0)).toBe(true);
      expectClose(results[0]![i]!, results[1]![i]!, 2e-6, 2e-6);
    }
  });
});
