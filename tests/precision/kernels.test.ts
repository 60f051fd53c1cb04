import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';

import { loadAddon, type NativeAddon } from '../../src/kernels/native/addon.js';
import { PACKED_DTYPES, type PackedDtype } from '../../src/kernels/contract.js';
import { linear, gatedLinear } from '../../src/ops/linear.js';
import { packedDtypeOf, packWeight, roundBfloat16, roundFloat16, roundToDtype } from '../../src/ops/packed-weights.js';
import { built, expectClose, packWeights, randoms, useNativeBackend } from '../native/helpers.js';

/**
 * The packed-weight kernels (native/src/quant.c) against plain JavaScript: packing against the
 * rounding in src/ops/packed-weights.ts (a different algorithm: arithmetic, not bit tricks), the
 * products against a double-precision sum over those rounded weights, on every vector path this
 * CPU has and on sizes that leave vector tails.
 */
const describeNative = built ? describe : describe.skip;

const kindOf = (dtype: PackedDtype): number => PACKED_DTYPES.indexOf(dtype);

/** x [rows, in] · wᵀ (+ bias), summed in double precision. */
function reference(x: Float32Array, w: Float32Array, bias: Float32Array | null, rows: number, inF: number, n: number): Float64Array {
  const out = new Float64Array(rows * n);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < n; j++) {
      let s = bias === null ? 0 : bias[j]!;
      for (let k = 0; k < inF; k++) s += x[i * inF + k]! * w[j * inF + k]!;
      out[i * n + j] = s;
    }
  }
  return out;
}

const silu = (v: number): number => v / (1 + Math.exp(-v));

describeNative('packed-weight kernels (quant.c) against plain JavaScript', () => {
  const addon = built ? loadAddon() : (undefined as unknown as NativeAddon);
  const bestIsa = built ? addon.quantIsa() : 'portable';
  const isas = ['portable', 'avx2', 'avx512'].slice(0, ['portable', 'avx2', 'avx512'].indexOf(bestIsa) + 1);
  afterAll(() => {
    if (built) addon.quantIsa(bestIsa);
  });

  it('rounds to bfloat16 and float16 (ties to even, subnormals, overflow) and int8 per row as the JS rounding does, bit for bit', () => {
    const special = [0, -0, 1, -1, 1 + 2 ** -8, 1 + 3 * 2 ** -8, 1 + 2 ** -11, 1 + 3 * 2 ** -11, 65504, 65519, 65520, 70000, -70000,
      6e-5, 1e-6, 3e-8, 2 ** -24, 2 ** -25, 1e-30, 3.4e38, Infinity, -Infinity];
    const w = Float32Array.from([...special, ...randoms(4 * 37 - special.length, 3).map((v, i) => v * 10 ** ((i % 9) - 4))]);
    for (const dtype of PACKED_DTYPES) {
      const rows = 4;
      const cols = 37;
      const finite = dtype === 'int8' ? w.map((v) => (Number.isFinite(v) && Math.abs(v) < 1e30 ? v : 0.5)) : w;
      const { data, scales } = packWeights(addon, dtype, finite, rows, cols);
      const out = new Float32Array(rows * cols);
      addon.quantUnpack(kindOf(dtype), data, scales, out, rows, cols);
      const expected = roundToDtype(finite, rows, cols, dtype);
      for (let i = 0; i < out.length; i++) {
        if (!Object.is(out[i], expected[i])) expect.fail(`${dtype} [${i}] of ${finite[i]}: native ${out[i]}, JS ${expected[i]}`);
      }
    }
    // The JS rounding itself, on values whose answers are known from the formats' definitions.
    expect([roundBfloat16(1 + 2 ** -8), roundBfloat16(1 + 3 * 2 ** -8), roundBfloat16(1 + 2 ** -7)]).toEqual([1, 1 + 2 ** -6, 1 + 2 ** -7]);
    expect([roundFloat16(65519), roundFloat16(65520), roundFloat16(2 ** -25), roundFloat16(3 * 2 ** -25)]).toEqual([65504, Infinity, 0, 2 ** -23]);
  });

  for (const dtype of PACKED_DTYPES) {
    it(`${dtype}: linear (GEMV up to 4 rows, GEMM above) and the gated linear match a double-precision sum on every vector path`, () => {
      for (const isa of isas) {
        expect(addon.quantIsa(isa)).toBe(isa);
        for (const [rows, inF, n] of [[1, 1, 1], [1, 33, 7], [2, 16, 5], [4, 100, 9], [5, 257, 3], [9, 64, 70], [1, 515, 40]] as const) {
          const seed = rows * 1000 + inF * 10 + n;
          const x = randoms(rows * inF, seed);
          const w = randoms(n * inF, seed + 1).map((v) => v * 0.7);
          const up = randoms(n * inF, seed + 2);
          const bias = randoms(n, seed + 3);
          const { data, scales } = packWeights(addon, dtype, w, n, inF);
          const packedUp = packWeights(addon, dtype, up, n, inF);
          const rounded = roundToDtype(w, n, inF, dtype);
          const roundedUp = roundToDtype(up, n, inF, dtype);
          // float32 sums of `inF` terms of size <= 1 against double ones.
          const atol = 1e-6 * (inF + 1);
          const out = new Float32Array(rows * n);
          addon.quantLinear(x, kindOf(dtype), data, scales, bias, out, inF, n, 0);
          expectClose(out, reference(x, rounded, bias, rows, inF, n), atol, 1e-5);
          addon.quantLinear(x, kindOf(dtype), data, scales, null, out, inF, n, 3 /* silu */);
          expectClose(out, reference(x, rounded, null, rows, inF, n).map(silu), atol, 1e-5);
          addon.quantGatedLinear(x, kindOf(dtype), data, scales, packedUp.data, packedUp.scales, bias, null, out, inF, n, 3);
          const gate = reference(x, rounded, bias, rows, inF, n);
          const upRef = reference(x, roundedUp, null, rows, inF, n);
          expectClose(out, gate.map((g, i) => silu(g) * upRef[i]!), atol * 4, 1e-4);
        }
      }
    });
  }

  it('refuses packed data of the wrong type or size, an unknown kind and int8 without scales, naming the argument', () => {
    const x = new Float32Array(8);
    const out = new Float32Array(2);
    expect(() => addon.quantLinear(x, 0, new Uint16Array(15), null, null, out, 8, 2, 0)).toThrow(/w must hold 16 values, not 15/);
    expect(() => addon.quantLinear(x, 2, new Uint16Array(16) as unknown as Int8Array, new Float32Array(2), null, out, 8, 2, 0)).toThrow(/w must be an Int8Array/);
    expect(() => addon.quantLinear(x, 2, new Int8Array(16), null, null, out, 8, 2, 0)).toThrow(/int8 w needs 2 scales/);
    expect(() => addon.quantLinear(x, 7, new Uint16Array(16), null, null, out, 8, 2, 0)).toThrow(/unknown packed weight kind 7/);
    expect(() => addon.quantLinear(x, 0, new Uint16Array(16), null, null, new Float32Array(3), 8, 2, 0)).toThrow(/out must hold rows\*n = 2/);
  });
});

describeNative('packed weights through the linear ops on the native backend', () => {
  useNativeBackend();

  it('a packed weight of over 2 MiB (moved to 2 MiB pages; split over threads above 4 M weights) computes as its rounded float32 values', () => {
    for (const [dtype, n, inF] of [['bfloat16', 2100, 4096], ['int8', 2100, 1024]] as const) {
      const wValues = randoms(n * inF, 21);
      const weight = tf.variable(tf.tensor2d(wValues, [n, inF]));
      packWeight(weight, dtype);
      const start = tf.memory().numTensors;
      const expected = roundToDtype(wValues, n, inF, dtype);
      const widened = weight.dataSync();
      let mismatches = 0;
      for (let i = 0; i < expected.length; i++) if (widened[i] !== expected[i]) mismatches++;
      expect(mismatches, `${dtype}: widened values differing from the rounding`).toBe(0);
      const rounded = tf.tensor2d(expected, [n, inF]);
      const x = tf.tensor2d(randoms(2 * inF, 22), [2, inF]);
      const y = tf.tidy(() => linear(x, weight).dataSync());
      expectClose(y, tf.tidy(() => linear(x, rounded).dataSync()), 1e-4, 1e-5);
      tf.dispose([x, rounded]);
      expect(tf.memory().numTensors).toBe(start);
      weight.dispose();
    }
  });

  for (const dtype of PACKED_DTYPES) {
    it(`${dtype}: linear and gatedLinear read the packed weight; dataSync widens it; other ops and gradients fail clearly; nothing leaks`, () => {
      const [n, inF] = [13, 37];
      const wValues = randoms(n * inF, 11);
      const uValues = randoms(n * inF, 12);
      const weight = tf.variable(tf.tensor2d(wValues, [n, inF]));
      const upWeight = tf.variable(tf.tensor2d(uValues, [n, inF]));
      packWeight(weight, dtype);
      packWeight(upWeight, dtype);
      expect(packedDtypeOf(weight)).toBe(dtype);
      const start = tf.memory().numTensors;
      const x = tf.tensor3d(randoms(2 * 3 * inF, 13), [2, 3, inF]);
      const rounded = tf.tensor2d(roundToDtype(wValues, n, inF, dtype), [n, inF]);
      const roundedUp = tf.tensor2d(roundToDtype(uValues, n, inF, dtype), [n, inF]);
      expect(weight.dataSync()).toEqual(rounded.dataSync());

      const y = tf.tidy(() => linear(x, weight).dataSync());
      const expected = tf.tidy(() => linear(x, rounded).dataSync());
      expectClose(y, expected, 1e-5, 1e-5);
      const gated = tf.tidy(() => gatedLinear(x, { weight }, { weight: upWeight }, 'silu').dataSync());
      const gatedExpected = tf.tidy(() => gatedLinear(x, { weight: rounded }, { weight: roundedUp }, 'silu').dataSync());
      expectClose(gated, gatedExpected, 1e-5, 1e-5);
      const gelu = tf.tidy(() => linear(x, weight, undefined, 'gelu').dataSync());
      expectClose(gelu, tf.tidy(() => linear(x, rounded, undefined, 'gelu').dataSync()), 1e-5, 1e-5);

      expect(() => tf.tidy(() => tf.add(weight, 1))).toThrow(new RegExp(`held as ${dtype}.*only the linear kernels read it`));
      expect(() => tf.grad((v: tf.Tensor) => linear(v, weight).sum())(x)).toThrow(new RegExp(`held as ${dtype}.*cannot be trained`));
      tf.dispose([x, rounded, roundedUp]);
      expect(tf.memory().numTensors).toBe(start);
      // Assigning float32 values replaces the packed storage: an ordinary weight again.
      tf.tidy(() => weight.assign(tf.tensor2d(wValues, [n, inF])));
      expect(packedDtypeOf(weight)).toBeUndefined();
      expect(weight.dataSync()).toEqual(wValues);
      tf.dispose([weight, upWeight]);
    });
  }
});
