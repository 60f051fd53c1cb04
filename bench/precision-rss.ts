/**
 * Child process of the precision bench: build a model, hold its linear weights as a dtype, and
 * print the process's resident memory before and after as JSON (`{ before, after }`, bytes).
 * Usage: node --expose-gc [tsx flags] bench/precision-rss.ts <dtype> <config json> <backend>
 */
import 'reflect-metadata';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend, type BackendName } from '../src/kernels/backend.js';
import { AutoCausalLM } from '../src/loaders/auto.js';
import { checkWeightDtype } from '../src/ops/packed-weights.js';

const [dtypeArg, configJson, backend] = process.argv.slice(2);
const dtype = checkWeightDtype(dtypeArg, 'precision-rss');
await initBackend({ backend: backend as BackendName });

/** Resident bytes once freed memory is collected (garbage collection, then the backend's reuse pool). */
async function settledRss(): Promise<number> {
  const gc = (globalThis as { gc?: () => void }).gc;
  (tf.backend() as { releaseSpareBuffers?: () => void }).releaseSpareBuffers?.();
  // Collections, finalizers and the backend's delayed trim (its memory goes back ~100 ms after a
  // collection): several rounds, generously spaced, so a busy machine reads the same as a quiet one.
  for (let i = 0; i < 5; i++) {
    gc?.();
    await new Promise((resolve) => setTimeout(resolve, 150));
  }
  return process.memoryUsage().rss;
}

// The engine's own working memory is not the model's: OpenBLAS allocates its per-thread GEMM
// buffers on the first large product, so one runs (and is freed) before the first reading.
tf.tidy(() => tf.matMul(tf.ones([512, 768]), tf.ones([768, 768])).dataSync());
const before = await settledRss();
const lm = AutoCausalLM.fromConfig(JSON.parse(configJson!) as Record<string, unknown>, { seed: 1, dtype });
lm.generate([[1, 2, 3]], { maxNewTokens: 2 }); // a loaded model has run
const after = await settledRss();
console.log(JSON.stringify({ before, after }));
lm.dispose();
