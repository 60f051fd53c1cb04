/**
 * Matmul throughput of the native (OpenBLAS) backend against wasm:
 *   npx tsx bench/native-matmul.ts
 * GEMMs report GFLOP/s (2·M·N·K per product); the [1,768]x[768,3072] matvec reports GB/s of the
 * weight matrix streamed. Each rate is reported at the median and at the best call: on a shared
 * machine the best call shows what the kernel can do, the median what a neighbour left of it.
 * The last line is JSON. Native rows are absent when the addon is not built.
 */
import * as tf from '@tensorflow/tfjs-core';

import { initBackend } from '../src/kernels/backend.js';
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

const results: Record<string, unknown> = {
  OPENBLAS_CORETYPE: process.env.OPENBLAS_CORETYPE ?? null,
  OPENBLAS_L2_SIZE: process.env.OPENBLAS_L2_SIZE ?? null,
};
if (isNativeBuilt()) {
  results.native = await run('native');
  // After loading: the addon picks a core type itself when OPENBLAS_CORETYPE was unset.
  const info = nativeInfo();
  results.openblas = { coreName: info.coreName, numThreads: info.numThreads, config: info.config };
} else {
  console.log('native: not built (npm run build:native); measuring wasm only');
}
results.wasm = await run('wasm');
console.log(JSON.stringify(results));
