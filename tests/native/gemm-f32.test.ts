import { afterEach, describe, expect, it } from 'vitest';

import { loadAddon, type NativeAddon } from '../../src/kernels/native/addon.js';
import { getNumThreads, setNumThreads } from '../../src/kernels/native/index.js';
import { PACKED_DTYPES } from '../../src/kernels/contract.js';
import { built, expectGemmCase, expectSummationClose, GEMM_CASE_A, GEMM_CASE_B, gemmCases, gemmReference, packWeights, randoms } from './helpers.js';

/**
 * The float32 GEMM (native/src/gemm-f32.c) that packed weights' prefill runs on: its product
 * against a double-precision sum (equal up to float32 summation order), on shapes that cross its
 * blocks (MR = 14 rows, NR = 32 columns, KC = 256 inner indices, MC = 672 rows) and their tails.
 * Where the CPU lacks AVX-512 the entry point must refuse, naming it, and packed prefill must
 * still agree through its other path (widen, then OpenBLAS's sgemm).
 */
const describeNative = built ? describe : describe.skip;

describeNative('float32 GEMM (gemm-f32.c) and packed prefill on it', () => {
  const addon = built ? loadAddon() : (undefined as unknown as NativeAddon);
  const available = built && addon.gemmF32Available();
  const threads = built ? getNumThreads() : 1;
  afterEach(() => {
    addon.gemmF32ForceAbsent(false);
    setNumThreads(threads);
  });

  it('matches a double-precision sum on odd shapes, block tails, transposes, bias, 1 and 2 threads', () => {
    // [m, n, k]: an empty inner dimension (the bias alone), below one microkernel, one past
    // MR/NR/KC, and m past MC (two row blocks).
    const shapes = [[4, 6, 0], [1, 1, 1], [2, 3, 5], [15, 33, 257], [14, 32, 256], [29, 70, 600], [700, 45, 40], [5, 100, 2]] as const;
    for (const t of [1, 2]) {
      setNumThreads(t);
      for (const c of gemmCases(shapes)) {
        // NaN where nothing was written: the GEMM must write every entry.
        const out = new Float32Array(2 * c.m * c.n).fill(Number.NaN);
        const call = () => addon.gemmF32(c.a, c.b, out, GEMM_CASE_A, GEMM_CASE_B, c.m, c.n, c.k, c.ta, c.tb, c.bias);
        if (!available) {
          expect(call).toThrow(/float32 GEMM needs AVX-512F and AVX-512BW/);
          return;
        }
        call();
        expectGemmCase(out, c, `threads ${t}`);
      }
    }
  });

  it('refuses, naming AVX-512, when told the CPU lacks it', () => {
    addon.gemmF32ForceAbsent(true);
    expect(addon.gemmF32Available()).toBe(false);
    const out = new Float32Array(4);
    expect(() => addon.gemmF32(randoms(4), randoms(4), out, Int32Array.of(0), Int32Array.of(0), 2, 2, 2, false, false, null)).toThrow(
      /float32 GEMM needs AVX-512F and AVX-512BW/,
    );
  });

  for (const dtype of PACKED_DTYPES) {
    it(`${dtype} weights: prefill (quantLinear, quantGatedLinear) matches the double sum over the widened weights, on the GEMM and on widen-then-sgemm`, () => {
      // Rows past quant.c's GEMV (more than 4), across MR and MC; inner sizes across KC.
      for (const [rows, inF, n] of [[5, 257, 3], [40, 515, 33], [700, 64, 70]] as const) {
        const x = randoms(rows * inF, rows + inF);
        const w = randoms(n * inF, n + inF).map((v) => v * 0.7);
        const bias = randoms(n, 5);
        const { kind, data, scales, widened } = packWeights(addon, dtype, w, n, inF);
        // int8: the GEMM sums the codes and scales the sum; widen-then-sgemm scales each weight
        // first. Both are within float32 summation error of the sum over the scaled codes.
        const ref = gemmReference(x, widened, rows, n, inF, false, true, bias);
        const results: Float32Array[] = [];
        for (const absent of available ? [false, true] : [true]) {
          addon.gemmF32ForceAbsent(absent);
          const out = new Float32Array(rows * n).fill(Number.NaN);
          addon.quantLinear(x, kind, data, scales, bias, out, inF, n, 0);
          expectSummationClose(out, ref, inF + 1, `${dtype} ${rows}x${n}x${inF} ${absent ? 'widen+sgemm' : 'GEMM'}`);
          // Gated with act 0 (identity), no biases: (x·wᵀ)² from the same products.
          const gated = new Float32Array(rows * n);
          addon.quantGatedLinear(x, kind, data, scales, data, scales, null, null, gated, inF, n, 0);
          for (let i = 0; i < gated.length; i++) {
            const v = out[i]! - bias[i % n]!;
            expect(Math.abs(gated[i]! - v * v)).toBeLessThanOrEqual(1e-4 * Math.max(1, v * v));
          }
          results.push(out);
        }
        // The switch did take the other path: the sums' order differs somewhere.
        if (available) expect(results[0]!.some((v, i) => v !== results[1]![i])).toBe(true);
      }
    });
  }
});
