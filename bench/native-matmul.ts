/**
 * Matmul throughput of the native (OpenBLAS) backend against wasm:
 *   npx tsx bench/native-matmul.ts
 * Then packed weights' prefill on the native addon: a [512, 768] x [2048, 768]^T product per
 * packed dtype, through the float32 GEMM that widens the weights while it packs them
 * (native/src/gemm-f32.c) and through widen-then-sgemm, alternated in one run.
 * GEMMs report GFLOP/s (2·M·N·K per product); the [1,768]x[768,3072] matvec reports GB/s of the
 * weight matrix streamed. Each rate is reported at the median and at the best call: on a shared
 * machine the best call shows what the kernel can do, the median what a neighbour left of it.
 * Then the thread pool's read-ahead (native/src/parallel.c): the GEMVs of one Llama-small decode
 * step (12 layers of QKV, output, gate and up, down projections, then the LM head), each after
 * 15 µs of spinning as the JS between decode kernels takes, timed with the read-ahead off and on,
 * alternated, per weight dtype (`gemv_sequence`, ms of GEMV a step, median of 12 bests of 5).
 * Then the fused attention kernel of a prefill on the float32 register tiles and through OpenBLAS,
 * alternated (`attention_kernel`, ms a call).
 * Then the selective scan of Mamba-130m's mixer (1536 channels, 16 states) on its AVX-512 loops
 * and on the generic ones, alternated: a 512-token prompt and one decode step (`scan_kernel`, ms a
 * call).
 * The last line is JSON. Native rows are absent when the addon is not built.
 */
import * as tf from '@tensorflow/tfjs-core';

import { PACKED_DTYPES, type PackedDtype } from '../src/kernels/contract.js';
import { initBackend } from '../src/kernels/backend.js';
import { loadAddon, type NativeAddon } from '../src/kernels/native/addon.js';
import { isNativeBuilt, nativeInfo } from '../src/kernels/native/index.js';

interface Case {
  name: string;
  m: number;
  k: number;
  n: number;
  transposeB?: boolean;
  batch?: number;
}

const CASES: Case[] = [
  { name: 'gemm 1024x768 @ 768x768', m: 1024, k: 768, n: 768 },
  { name: 'gemm 1024x768 @ (768x768)^T', m: 1024, k: 768, n: 768, transposeB: true },
  { name: 'gemm 1024x768 @ 768x3072', m: 1024, k: 768, n: 3072 },
  { name: 'attention 12x[128x64] @ [64x128]', m: 128, k: 64, n: 128, batch: 12 },
  { name: 'matvec 1x768 @ 768x3072', m: 1, k: 768, n: 3072 },
];

/** Median and best seconds per call over ~`budget` seconds after a warm-up. */
function time(fn: () => void, budget = 1.0): { median: number; best: number } {
  fn();
  fn();
  const samples: number[] = [];
  const start = performance.now();
  while (samples.length < 3 || (performance.now() - start) / 1000 < budget) {
    const t0 = performance.now();
    fn();
    samples.push((performance.now() - t0) / 1000);
    if (samples.length >= 200) break;
  }
  samples.sort((x, y) => x - y);
  return { median: samples[Math.floor(samples.length / 2)], best: samples[0] };
}

async function run(backend: 'native' | 'wasm'): Promise<Record<string, { median: number; best: number }>> {
  await initBackend({ backend });
  const out: Record<string, { median: number; best: number }> = {};
  for (const c of CASES) {
    const batch = c.batch ?? 1;
    const lead = batch > 1 ? [batch] : [];
    const a = tf.randomNormal([...lead, c.m, c.k]);
    const b = tf.randomNormal(c.transposeB ? [...lead, c.n, c.k] : [...lead, c.k, c.n]);
    const seconds = time(() => {
      const y = tf.matMul(a, b, false, c.transposeB ?? false);
      y.dataSync();
      y.dispose();
    });
    const work = c.m === 1 ? c.k * c.n * 4 : 2 * batch * c.m * c.n * c.k;
    const rate = { median: work / seconds.median / 1e9, best: work / seconds.best / 1e9 };
    out[c.name] = rate;
    const unit = c.m === 1 ? 'GB/s' : 'GFLOP/s';
    console.log(
      `${backend.padEnd(6)} ${c.name.padEnd(34)} ${rate.median.toFixed(1).padStart(7)} ${unit} median, ` +
        `${rate.best.toFixed(1).padStart(7)} best (${(seconds.median * 1e3).toFixed(2)} ms)`,
    );
    tf.dispose([a, b]);
  }
  return out;
}

/** `w` [n, inF] packed as `dtype` by the addon (int8 with a scale per row). */
function pack(addon: NativeAddon, dtype: PackedDtype, w: Float32Array, n: number, inF: number) {
  const data = dtype === 'int8' ? new Int8Array(n * inF) : new Uint16Array(n * inF);
  const scales = dtype === 'int8' ? new Float32Array(n) : null;
  addon.quantPack(PACKED_DTYPES.indexOf(dtype), w, data, scales, n, inF);
  return { data, scales };
}

/** GFLOP/s of packed prefill per dtype and path; the two paths alternate so both see the same machine. */
function packedPrefill(): Record<string, Record<string, { median: number; best: number }>> {
  const addon = loadAddon();
  const [rows, inF, n] = [512, 768, 2048];
  const x = Float32Array.from({ length: rows * inF }, (_, i) => Math.sin(i));
  const w = Float32Array.from({ length: n * inF }, (_, i) => Math.cos(i) * 0.1);
  const out = new Float32Array(rows * n);
  const paths = addon.gemmF32Available() ? ['gemm_f32', 'widen_sgemm'] : ['widen_sgemm'];
  const results: Record<string, Record<string, { median: number; best: number }>> = {};
  for (const dtype of PACKED_DTYPES) {
    const kind = PACKED_DTYPES.indexOf(dtype);
    const { data, scales } = pack(addon, dtype, w, n, inF);
    const samples: Record<string, number[]> = Object.fromEntries(paths.map((p) => [p, []]));
    for (let round = 0; round < 5; round++) {
      for (const path of paths) {
        addon.gemmF32ForceAbsent(path !== 'gemm_f32');
        const { median } = time(() => addon.quantLinear(x, kind, data, scales, null, out, inF, n, 0), 0.3);
        samples[path]!.push(median);
      }
    }
    addon.gemmF32ForceAbsent(false);
    results[dtype] = {};
    for (const path of paths) {
      const s = samples[path]!.sort((a, b) => a - b);
      const work = 2 * rows * inF * n;
      const rate = { median: work / s[Math.floor(s.length / 2)]! / 1e9, best: work / s[0]! / 1e9 };
      results[dtype]![path] = rate;
      console.log(`packed   ${`${dtype} prefill ${rows}x${inF} @ (${n}x${inF})^T ${path}`.padEnd(52)} ${rate.median.toFixed(1).padStart(7)} GFLOP/s median, ${rate.best.toFixed(1).padStart(7)} best`);
    }
  }
  return results;
}

/**
 * Two ways of one computation, taking turns so the machine's drift falls on both alike: per round
 * and mode, `select(mode)`, one warm-up `run()`, then the best of 5 (`run` returns ms); the
 * median of the rounds' bests per mode.
 */
function alternated<M extends string>(modes: readonly M[], rounds: number, select: (mode: M) => void, run: () => number): Record<M, number> {
  const bests = new Map<M, number[]>(modes.map((mode) => [mode, []]));
  for (let round = 0; round < rounds; round++) {
    for (const mode of modes) {
      select(mode);
      run();
      let best = Infinity;
      for (let i = 0; i < 5; i++) best = Math.min(best, run());
      bests.get(mode)!.push(best);
    }
  }
  const median = (v: number[]) => [...v].sort((a, b) => a - b)[v.length >> 1]!;
  return Object.fromEntries(modes.map((mode) => [mode, median(bests.get(mode)!)])) as Record<M, number>;
}

/** GEMV ms of one Llama-small decode step per weight dtype, the pool's read-ahead off and on. */
function gemvSequence(): Record<string, { off: number; on: number }> {
  const addon = loadAddon();
  const gapMs = 0.015;
  const spin = () => {
    const until = performance.now() + gapMs;
    while (performance.now() < until);
  };
  const results: Record<string, { off: number; on: number }> = {};
  for (const dtype of ['float32', ...PACKED_DTYPES] as const) {
    const kind = dtype === 'float32' ? -1 : PACKED_DTYPES.indexOf(dtype);
    const weight = (n: number, inF: number) => {
      const w = Float32Array.from({ length: n * inF }, (_, i) => Math.cos(i * 0.37) * 0.1);
      return dtype === 'float32' ? { data: w, scales: null } : pack(addon, dtype, w, n, inF);
    };
    const x = Float32Array.from({ length: 2048 }, (_, i) => Math.sin(i));
    const linears = (inF: number, ...widths: number[]) => {
      const ws = widths.map((n) => weight(n, inF));
      const kinds = Int32Array.from(widths, () => kind);
      const outs = widths.map((n) => new Float32Array(n));
      return () => addon.linearMany(x.subarray(0, inF), inF, kinds, ws.map((w) => w.data), ws.map((w) => w.scales), ws.map(() => null), outs);
    };
    const calls: (() => void)[] = [];
    for (let layer = 0; layer < 12; layer++) calls.push(linears(768, 768, 256, 256), linears(768, 768), linears(768, 2048, 2048), linears(2048, 768));
    calls.push(linears(768, 32000));
    const step = (): number => {
      let ms = 0;
      for (const call of calls) {
        spin();
        const t0 = performance.now();
        call();
        ms += performance.now() - t0;
      }
      return ms;
    };
    for (let i = 0; i < 3; i++) step();
    results[dtype] = alternated(['off', 'on'], 12, (mode) => addon.setReadAhead(mode === 'on'), step);
    addon.setReadAhead(true);
    console.log(`pool     ${`${dtype} decode step's GEMVs, read-ahead off / on`.padEnd(52)} ${results[dtype].off.toFixed(2).padStart(7)} / ${results[dtype].on.toFixed(2)} ms`);
  }
  return results;
}

/**
 * The fused attention kernel of a prefill (softmax(q kᵀ) v per head, no projections) on the
 * float32 register tiles (native/src/attention-f32.c) and through OpenBLAS, alternated: BERT-base's
 * 8×128 encode layer and a 512-token causal Llama-small layer (12 query heads over 4 kv heads).
 * ms a call, median of 8 bests of 5 each, and GFLOP/s of the two products (half for causal).
 */
function attentionKernel(): Record<string, { blas: number; tiles: number }> {
  const addon = loadAddon();
  const results: Record<string, { blas: number; tiles: number }> = {};
  const cases = [
    { name: 'bert_base_8x128', batch: 8, len: 128, heads: 12, kvHeads: 12, causal: false },
    { name: 'llama_small_512_causal', batch: 1, len: 512, heads: 12, kvHeads: 4, causal: true },
  ];
  for (const c of cases) {
    const D = 64;
    const filled = (n: number, phase: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.61 + phase));
    const q = filled(c.batch * c.len * c.heads * D, 0);
    const k = filled(c.batch * c.len * c.kvHeads * D, 1);
    const v = filled(c.batch * c.len * c.kvHeads * D, 2);
    const out = new Float32Array(q.length);
    const dims = Int32Array.of(c.batch, c.len, c.len, c.heads, c.kvHeads, D, 0, 0, c.causal ? 1 : 0);
    const call = () => {
      const t0 = performance.now();
      addon.attention(q, k, v, null, out, dims, 1 / Math.sqrt(D));
      return performance.now() - t0;
    };
    results[c.name] = alternated(['blas', 'tiles'], 8, (mode) => addon.attentionF32ForceAbsent(mode === 'blas'), call);
    addon.attentionF32ForceAbsent(false);
    const flops = 4 * c.batch * c.heads * c.len * c.len * D * (c.causal ? 0.5 : 1);
    const rate = (ms: number) => (flops / ms / 1e6).toFixed(0);
    const { blas, tiles } = results[c.name]!;
    console.log(
      `attention ${`${c.name}, OpenBLAS / tiles`.padEnd(51)} ${blas.toFixed(2).padStart(7)} / ${tiles.toFixed(2)} ms (${rate(blas)} / ${rate(tiles)} GFLOP/s)`,
    );
  }
  return results;
}

/**
 * The selective scan (native/src/scan.c) on its AVX-512 loops and on its generic ones, alternated,
 * at Mamba-130m's width: a 512-token prompt and one decode step from a state. ms a call, median of
 * 8 bests of 5 each.
 */
function scanKernel(): Record<string, { generic: number; avx512: number }> {
  const addon = loadAddon();
  const results: Record<string, { generic: number; avx512: number }> = {};
  const [dim, nstate] = [1536, 16];
  const filled = (n: number, f: (i: number) => number) => Float32Array.from({ length: n }, (_, i) => f(i));
  for (const len of [512, 1]) {
    const u = filled(len * dim, (i) => Math.sin(i));
    const delta = filled(len * dim, (i) => 0.01 + 0.1 * Math.abs(Math.cos(i)));
    const A = filled(dim * nstate, (i) => -(1 + (i % nstate)));
    const [Bm, Cm] = [filled(len * nstate, (i) => Math.cos(i)), filled(len * nstate, (i) => Math.sin(3 * i))];
    const [D, h0] = [filled(dim, () => 1), filled(dim * nstate, (i) => Math.sin(i))];
    const [y, h] = [new Float32Array(len * dim), new Float32Array(dim * nstate)];
    const name = len === 1 ? 'mamba130m_decode_step' : `mamba130m_prompt_${len}`;
    const repeats = len === 1 ? 200 : 1;
    const call = () => {
      const t0 = performance.now();
      for (let i = 0; i < repeats; i++) addon.selectiveScan(u, delta, A, Bm, Cm, D, h0, y, h, 1, len, dim, nstate);
      return (performance.now() - t0) / repeats;
    };
    results[name] = alternated(['generic', 'avx512'], 8, (mode) => addon.scanAvx512ForceAbsent(mode === 'generic'), call);
    addon.scanAvx512ForceAbsent(false);
    const { generic, avx512 } = results[name]!;
    console.log(`scan     ${`${name}, generic / AVX-512 loops`.padEnd(51)} ${generic.toFixed(3).padStart(7)} / ${avx512.toFixed(3)} ms`);
  }
  return results;
}

const results: Record<string, unknown> = {
  OPENBLAS_CORETYPE: process.env.OPENBLAS_CORETYPE ?? null,
  OPENBLAS_L2_SIZE: process.env.OPENBLAS_L2_SIZE ?? null,
};
if (isNativeBuilt()) {
  results.native = await run('native');
  results.packed_prefill = packedPrefill();
  results.gemv_sequence = gemvSequence();
  results.attention_kernel = attentionKernel();
  results.scan_kernel = scanKernel();
  // After loading: the addon picks a core type itself when OPENBLAS_CORETYPE was unset.
  const info = nativeInfo();
  results.openblas = { coreName: info.coreName, numThreads: info.numThreads, config: info.config };
} else {
  console.log('native: not built (npm run build:native); measuring wasm only');
}
results.wasm = await run('wasm');
console.log(JSON.stringify(results));
