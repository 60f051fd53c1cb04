import * as tf from '@tensorflow/tfjs-core';
import { afterEach, describe, expect, it } from 'vitest';

import { AutoCausalLM, AutoEncoder } from '../../src/index.js';
import { loadAddon, type NativeAddon } from '../../src/kernels/native/addon.js';
import { getMatmulPrecision, getNumThreads, setMatmulPrecision, setNumThreads } from '../../src/kernels/native/index.js';
import { PACKED_DTYPES } from '../../src/kernels/contract.js';
import { roundBfloat16 } from '../../src/ops/packed-weights.js';
import { fixture, loadExpected } from '../helpers.js';
import { built, expectGemmCase, expectSummationClose, GEMM_CASE_A, GEMM_CASE_B, gemmCases, gemmReference, packWeights, randoms, useNativeBackend } from './helpers.js';

/**
 * The opt-in bf16-compute GEMM (native/src/gemm-bf16.c) and its switch, setMatmulPrecision.
 * Products are checked against a double-precision sum of the bf16-rounded operands: they agree up
 * to float32 summation order, |Δ| <= K·2^-23·Σ|a·b|, far below bf16's own rounding (2^-9).
 * Where the CPU lacks AVX512_BF16 the same tests check that asking for it fails, naming the feature.
 */
const describeNative = built ? describe : describe.skip;

/** The reference product over bf16-rounded operands (helpers.ts's gemmReference). */
const reference = (a: Float32Array, b: Float32Array, m: number, n: number, k: number, ta: boolean, tb: boolean, bias: Float32Array | null) =>
  gemmReference(a, b, m, n, k, ta, tb, bias, roundBfloat16);

describeNative('bf16-compute GEMM (gemm-bf16.c) and setMatmulPrecision', () => {
  const addon = built ? loadAddon() : (undefined as unknown as NativeAddon);
  const missing = built ? addon.bf16Missing() : null;
  useNativeBackend();
  afterEach(() => {
    addon.bf16ForceAbsent(false);
    addon.amxForceAbsent(false);
    if (missing === null) setMatmulPrecision('float32');
  });

  // Where AMX is present the GEMM runs on its tiles; the vdpbf16ps path is checked too, forced.
  const paths = built && addon.amxAvailable() ? (['amx', 'vdpbf16ps'] as const) : (['vdpbf16ps'] as const);

  it(`matches a double-precision sum of the bf16-rounded operands on odd shapes, tails, transposes, bias, 1 and 2 threads (${paths.join(', ')})`, () => {
    const shapes = [[1, 1, 1], [2, 3, 5], [13, 33, 7], [12, 32, 64], [25, 45, 517], [37, 70, 1030], [600, 65, 33], [3, 100, 2], [70, 300, 96]] as const;
    const threads = getNumThreads();
    try {
      for (const [path, t] of paths.flatMap((p) => [[p, 1], [p, 2]] as const)) {
        setNumThreads(t);
        addon.amxForceAbsent(path !== 'amx');
        for (const c of gemmCases(shapes)) {
          const out = new Float32Array(2 * c.m * c.n);
          const call = () => addon.gemmBf16(c.a, c.b, out, GEMM_CASE_A, GEMM_CASE_B, c.m, c.n, c.k, c.ta, c.tb, c.bias);
          if (missing !== null) {
            expect(call).toThrow(new RegExp(`AVX512_BF16; this CPU lacks ${missing}`));
            return;
          }
          call();
          expectGemmCase(out, c, `${path} threads ${t}`, roundBfloat16);
        }
      }
    } finally {
      setNumThreads(threads);
      addon.amxForceAbsent(false);
    }
  });

  for (const dtype of PACKED_DTYPES) {
    it(`${dtype} weights: packed prefill (quantLinear, gated too) with bf16 compute matches the double sum of bf16(x) · bf16(w)`, () => {
      if (missing !== null) return expect(() => setMatmulPrecision('bfloat16')).toThrow(missing);
      for (const [path, [rows, inF, n]] of paths.flatMap((p) => ([[5, 257, 3], [9, 64, 70], [40, 515, 33]] as const).map((s) => [p, s] as const))) {
        addon.amxForceAbsent(path !== 'amx');
        const x = randoms(rows * inF, rows + inF);
        const w = randoms(n * inF, n + inF).map((v) => v * 0.7);
        const bias = randoms(n, 5);
        const { kind, data, scales, widened: unpacked } = packWeights(addon, dtype, w, n, inF);
        // int8 codes are exact in bf16 (the scale multiplies the sum); f16 values round to bf16.
        const wb = dtype === 'int8' ? unpacked : unpacked.map(roundBfloat16);
        // int8: the sum over the codes themselves, scaled afterwards as the kernel does.
        const scaled = data instanceof Int8Array ? reference(x, Float32Array.from(data), rows, n, inF, false, true, null) : null;
        setMatmulPrecision('bfloat16');
        const out = new Float32Array(rows * n);
        addon.quantLinear(x, kind, data, scales, bias, out, inF, n, 0);
        const gated = new Float32Array(rows * n);
        addon.quantGatedLinear(x, kind, data, scales, data, scales, null, null, gated, inF, n, 0);
        setMatmulPrecision('float32');
        const out32 = new Float32Array(rows * n);
        addon.quantLinear(x, kind, data, scales, bias, out32, inF, n, 0);
        if (dtype === 'int8') {
          // sum(bf16(x) q) * scale + bias: the bound scales Σ|x q| by the row's scale.
          for (let i = 0; i < out.length; i++) {
            const s = scales![i % n]!;
            const want = scaled!.out[i]! * s + bias[i % n]!;
            const bound = (inF + 3) * 2 ** -23 * (scaled!.mag[i]! * s + Math.abs(bias[i % n]!));
            if (!(Math.abs(out[i]! - want) <= bound)) expect.fail(`${path} int8 ${rows}x${n}x${inF} [${i}]: ${out[i]} vs ${want}`);
          }
        } else {
          expectSummationClose(out, reference(x, wb, rows, n, inF, false, true, bias), inF, `${path} ${dtype} ${rows}x${n}x${inF}`);
        }
        // Gated with act 0 (identity): (x·wᵀ)², from the same bf16 products.
        for (let i = 0; i < gated.length; i++) {
          const v = out[i]! - bias[i % n]!;
          expect(Math.abs(gated[i]! - v * v)).toBeLessThanOrEqual(1e-4 * Math.max(1, v * v));
        }
        // The default path (float32 activations) differs: the switch did take effect.
        expect(out.some((v, i) => v !== out32[i])).toBe(true);
      }
    });
  }

  it('setMatmulPrecision: float32 by default, rejects unknown names, and on a CPU without AVX512_BF16 throws naming it (state unchanged)', () => {
    expect(getMatmulPrecision()).toBe('float32');
    expect(() => setMatmulPrecision('bf16' as never)).toThrow(/precision must be 'float32' or 'bfloat16', got bf16/);
    expect(() => addon.setMatmulPrecision('half')).toThrow(/unknown matmul precision 'half'/);
    addon.bf16ForceAbsent(true);
    expect(addon.bf16Missing()).toBe('avx512_bf16');
    expect(() => setMatmulPrecision('bfloat16')).toThrow(/bfloat16 matmul precision needs a CPU with AVX512_BF16; this one lacks avx512_bf16/);
    expect(getMatmulPrecision()).toBe('float32');
    expect(() => addon.gemmBf16(new Float32Array(4), new Float32Array(4), new Float32Array(4), Int32Array.of(0), Int32Array.of(0), 2, 2, 2, false, false, null)).toThrow(/lacks avx512_bf16/);
    setMatmulPrecision('float32');
    addon.bf16ForceAbsent(false);
    expect(addon.bf16Missing()).toBe(missing);
    if (missing === null) {
      setMatmulPrecision('bfloat16');
      expect(getMatmulPrecision()).toBe('bfloat16');
      // Forcing "absent" while opted in falls back to float32 rather than leave a mode that cannot run.
      addon.bf16ForceAbsent(true);
      expect(getMatmulPrecision()).toBe('float32');
    }
  });

  it('tf.matMul / fused matMul: large products take the bf16 GEMM when opted in, small and one-row ones stay float32, nothing leaks', () => {
    if (missing !== null) return expect(() => setMatmulPrecision('bfloat16')).toThrow(missing);
    const start = tf.memory().numTensors;
    const [m, k, n] = [96, 160, 72]; // m·n·k above the 2^20 threshold
    const a = tf.tensor2d(randoms(m * k, 1), [m, k]);
    const b = tf.tensor2d(randoms(k * n, 2), [k, n]);
    const bias = tf.tensor1d(randoms(n, 3));
    const small = tf.tensor2d(randoms(8 * 16, 4), [8, 16]);
    const smallB = tf.tensor2d(randoms(16 * 8, 5), [16, 8]);
    const run = () => ({
      big: Float32Array.from(tf.matMul(a, b).dataSync()),
      fused: Float32Array.from(tf.fused.matMul({ a, b, bias, activation: 'relu' }).dataSync()),
      row: Float32Array.from(tf.matMul(a.slice([0, 0], [1, k]), b).dataSync()),
      small: Float32Array.from(tf.matMul(small, smallB).dataSync()),
    });
    const f32 = tf.tidy(run);
    setMatmulPrecision('bfloat16');
    const b16 = tf.tidy(run);
    setMatmulPrecision('float32');
    const ref = reference(a.dataSync() as Float32Array, b.dataSync() as Float32Array, m, n, k, false, false, null);
    expectSummationClose(b16.big, ref, k, 'matMul');
    const biasV = bias.dataSync();
    for (let i = 0; i < b16.fused.length; i++) {
      const want = Math.max(0, ref.out[i]! + biasV[i % n]!);
      expect(Math.abs(b16.fused[i]! - want)).toBeLessThanOrEqual((k + 3) * 2 ** -23 * (ref.mag[i]! + 1));
    }
    expect(b16.big.some((v, i) => v !== f32.big[i])).toBe(true);
    expect(b16.row).toEqual(f32.row);
    expect(b16.small).toEqual(f32.small);
    tf.dispose([a, b, bias, small, smallB]);
    expect(tf.memory().numTensors).toBe(start);
  });

  it('attention with bf16 compute (AMX only): within 2^-8·max|v| of a double-precision attention over bf16-rounded q, k, v; float32 elsewhere', () => {
    if (missing !== null) return expect(() => setMatmulPrecision('bfloat16')).toThrow(missing);
    const amx = addon.amxAvailable();
    // [batch, qLen, kvLen, heads, kvHeads, headDim, causal, left padding of row 1, head-major capacity or 0]
    const cases = [
      [1, 64, 64, 2, 2, 64, 1, 0, 0], [2, 70, 70, 4, 2, 40, 1, 3, 0], [1, 37, 100, 4, 1, 80, 1, 0, 128],
      [2, 33, 33, 2, 2, 64, 0, 5, 0], [1, 5, 9, 3, 3, 16, 1, 0, 0],
    ] as const;
    for (const [B, Lq, S, H, Hkv, D, causal, pad, cap] of cases) {
      const what = `B${B} Lq${Lq} S${S} H${H}/${Hkv} D${D} causal${causal} pad${pad} cap${cap}`;
      const seed = B + Lq * 3 + S * 5 + D * 7;
      const q = randoms(B * Lq * H * D, seed).map((v) => v * 1.5);
      const capacity = cap > 0 ? cap : S;
      const kvSize = cap > 0 ? B * Hkv * cap * D : B * S * Hkv * D;
      const k = randoms(kvSize, seed + 1).map((v) => v * 1.5);
      const v = randoms(kvSize, seed + 2).map((x) => x * 2);
      const mask = pad > 0 ? Float32Array.from({ length: B * S }, (_, i) => (i >= S && i % S < pad ? 0 : 1)) : null;
      const dims = Int32Array.of(B, Lq, S, H, Hkv, D, cap > 0 ? 1 : 0, cap > 0 ? 1 : 0, causal, capacity);
      const scale = 1 / Math.sqrt(D);
      const run = () => {
        const out = new Float32Array(B * Lq * H * D);
        addon.attention(q, k, v, mask, out, dims, scale);
        return out;
      };
      const f32 = run();
      setMatmulPrecision('bfloat16');
      const b16 = run();
      setMatmulPrecision('float32');
      if (!amx) {
        // Only the AMX path has a bf16 attention: without it the kernel stays float32.
        expect(b16, what).toEqual(f32);
        continue;
      }
      const at = (x: Float32Array, b: number, j: number, h: number, d: number) =>
        roundBfloat16(cap > 0 ? x[((b * Hkv + h) * cap + j) * D + d]! : x[((b * S + j) * Hkv + h) * D + d]!);
      let vmax = 0;
      for (const x of v) vmax = Math.max(vmax, Math.abs(roundBfloat16(x)));
      for (let b = 0; b < B; b++) {
        for (let h = 0; h < H; h++) {
          const kvh = Math.floor(h / (H / Hkv));
          for (let i = 0; i < Lq; i++) {
            let visible = causal ? S - Lq + i + 1 : S;
            const seen = (j: number) => j < visible && (mask === null || mask[b * S + j] !== 0);
            // A query that sees only padding attends uniformly to all S keys (the masking bias swamps every score).
            const uniform = !Array.from({ length: S }, (_, j) => seen(j)).some(Boolean);
            if (uniform) visible = S;
            const allowed = (j: number) => uniform || seen(j);
            const scores: number[] = [];
            for (let j = 0; j < visible; j++) {
              if (!allowed(j)) continue;
              let dot = 0;
              for (let d = 0; d < D; d++) dot += roundBfloat16(q[((b * Lq + i) * H + h) * D + d]!) * at(k, b, j, kvh, d);
              scores.push(uniform ? 0 : dot * scale);
            }
            const top = Math.max(...scores);
            const e = scores.map((x) => Math.exp(x - top));
            const sum = e.reduce((x, y) => x + y, 0);
            for (let d = 0; d < D; d++) {
              let want = 0;
              let idx = 0;
              for (let j = 0; j < visible; j++) {
                if (!allowed(j)) continue;
                want += (e[idx++]! / sum) * at(v, b, j, kvh, d);
              }
              const got = b16[((b * Lq + i) * H + h) * D + d]!;
              if (!(Math.abs(got - want) <= 2 ** -8 * vmax)) expect.fail(`${what} b${b} h${h} i${i} d${d}: ${got} vs ${want}`);
            }
          }
        }
      }
      expect(b16.some((x, i) => x !== f32[i]), `${what}: bf16 attention not applied`).toBe(true);
    }
  });

  for (const [name, loader, dtype] of [
    ['llama-tiny', AutoCausalLM, 'bfloat16'],
    ['llama-tiny', AutoCausalLM, 'int8'],
    ['jamba-tiny', AutoCausalLM, 'bfloat16'],
    ['bert-tiny', AutoEncoder, 'float16'],
  ] as const) {
    it(`${name} (${dtype} weights): prefill with bf16 compute within ${TOLERANCE_U} u of the default, nothing leaks`, async () => {
      if (missing !== null) return expect(() => setMatmulPrecision('bfloat16')).toThrow(missing);
      const start = tf.memory().numTensors;
      const model = await (loader as typeof AutoCausalLM).fromDir(fixture(name), { dtype });
      const e = loadExpected(name);
      const forward = () =>
        tf.tidy(() => {
          const ids = tf.tensor2d(e.input_ids, undefined, 'int32');
          const out = (model as unknown as { forward(ids: tf.Tensor2D): { logits?: tf.Tensor; lastHiddenState: tf.Tensor } }).forward(ids);
          return Float32Array.from((out.logits ?? out.lastHiddenState).dataSync());
        });
      const base = forward();
      setMatmulPrecision('bfloat16');
      const y = forward();
      setMatmulPrecision('float32');
      let scale = 0;
      let worst = 0;
      for (let i = 0; i < y.length; i++) {
        scale = Math.max(scale, Math.abs(base[i]!));
        worst = Math.max(worst, Math.abs(y[i]! - base[i]!));
      }
      expect(worst, 'bf16 compute changed nothing: not applied').toBeGreaterThan(0);
      expect(worst).toBeLessThanOrEqual(TOLERANCE_U * 2 ** -9 * scale);
      model.dispose();
      expect(tf.memory().numTensors).toBe(start);
    });
  }
});

/**
 * Max |Δ| against the default compute, in bf16 unit roundoffs (2^-9) of the output's max |y|, as
 * for packed weights in tests/precision/parity.test.ts. Measured with AMX (attention in bf16
 * too): llama-tiny bf16 8.4 u, int8 4.8 u, jamba-tiny bf16 9.5 u, bert-tiny f16 1.8 u; with
 * vdpbf16ps 4.2, 4.3, 11.0 and 1.5 u (docs/precision.md, "bfloat16 compute").
 */
const TOLERANCE_U = 32;
