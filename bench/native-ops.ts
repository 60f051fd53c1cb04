/**
 * Per-op time of the native backend against wasm for the non-matmul ops a transformer forward
 * runs (these are why the native backend replaces more than matmul: the cpu backend's JS kernels
 * it inherits were 10-130x slower than wasm on them):  npx tsx bench/native-ops.ts
 * Best-of-N milliseconds per op, including output allocation and disposal. The last line is JSON.
 */
import * as tf from '@tensorflow/tfjs-core';

import { initBackend } from '../src/kernels/backend.js';
import { isNativeBuilt } from '../src/kernels/native/index.js';

function bestMs(fn: () => void): number {
  fn();
  fn();
  const samples: number[] = [];
  const start = performance.now();
  while (samples.length < 5 || performance.now() - start < 500) {
    const t0 = performance.now();
    fn();
    samples.push(performance.now() - t0);
    if (samples.length >= 300) break;
  }
  return Math.min(...samples);
}

async function run(backend: 'native' | 'wasm'): Promise<Record<string, number>> {
  await initBackend({ backend });
  const scores = tf.randomNormal([12, 128, 128]);
  const h = tf.randomNormal([128, 3072]);
  const h2 = tf.randomNormal([128, 3072]);
  const heads = tf.randomNormal([1, 128, 12, 64]);
  const x = tf.randomNormal([128, 768]);
  const bias = tf.randomNormal([3072]);
  const ops: Record<string, () => tf.Tensor> = {
    'softmax [12,128,128]': () => tf.softmax(scores),
    'add [128,3072]+[3072]': () => tf.add(h, bias),
    'mul [128,3072]': () => tf.mul(h, h2),
    'exp [128,3072]': () => tf.exp(h),
    'sigmoid [128,3072]': () => tf.sigmoid(h),
    'erf [128,3072]': () => tf.erf(h),
    'tanh [128,3072]': () => tf.tanh(h),
    'transpose [1,128,12,64] 0213': () => tf.transpose(heads, [0, 2, 1, 3]),
    'mean [128,768] last axis': () => tf.mean(x, -1),
    'layernorm composed [128,768]': () =>
      tf.tidy(() => {
        const { mean, variance } = tf.moments(x, -1, true);
        return tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, 1e-5)));
      }),
  };
  const out: Record<string, number> = {};
  for (const [name, f] of Object.entries(ops)) {
    out[name] = bestMs(() => {
      const y = f();
      y.dataSync();
      y.dispose();
    });
  }
  tf.dispose([scores, h, h2, heads, x, bias]);
  return out;
}

const results: Record<string, Record<string, number>> = {};
if (isNativeBuilt()) results.native = await run('native');
results.wasm = await run('wasm');
for (const name of Object.keys(results.wasm)) {
  const native = results.native?.[name];
  const cells = native === undefined ? 'native -' : `native ${native.toFixed(3)} ms`;
  console.log(`${name.padEnd(30)} ${cells}   wasm ${results.wasm[name].toFixed(3)} ms`);
}
console.log(JSON.stringify(results));
