/**
 * Before/after of the native training kernels in one process (`npx tsx bench/train-kernels.ts`):
 * Adam on a [32000, 512] weight (tf.train.adam's ops; the earlier JS-loop kernel; the C kernel in
 * place), cross-entropy over [512, 32000] logits and the KL at T = 2 over [4, 128, 32000] logits,
 * forward + gradient, reference composition against the fused kernels. Each the median of several
 * runs, the variants taking turns so that a busy moment on a shared machine falls on all alike.
 */
import 'reflect-metadata';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/kernels/backend.js';
import { crossEntropy, referenceCrossEntropy } from '../src/ops/cross-entropy.js';
import { klDivergence, referenceKlDivergence } from '../src/ops/kl-divergence.js';
import { adam } from '../src/training/adam.js';
import { registerGradients } from '../src/training/gradients.js';

await initBackend({ backend: 'native' });
await registerGradients();
const runs = Number(process.argv[2] ?? 7);
/** Which parts to run (`adam,ce,kl`, default all). */
const only = new Set((process.argv[3] ?? 'adam,ce,kl').split(','));

/** Median wall ms of each variant over `runs` rounds, variants interleaved. */
function compare(variants: Record<string, () => void>): Record<string, number> {
  const times: Record<string, number[]> = {};
  for (const [name, fn] of Object.entries(variants)) {
    fn(); // warm-up
    times[name] = [];
  }
  for (let r = 0; r < runs; r++) {
    for (const [name, fn] of Object.entries(variants)) {
      const t0 = performance.now();
      fn();
      times[name]!.push(performance.now() - t0);
    }
  }
  return Object.fromEntries(Object.entries(times).map(([name, ts]) => [name, +ts.sort((a, b) => a - b)[Math.floor(ts.length / 2)]!.toFixed(1)]));
}

/** The Adam kernel as it was before (a JS loop writing three fresh pooled outputs), for comparison. */
tf.registerKernel({
  kernelName: 'BenchAdamJs',
  backendName: 'native',
  kernelFunc: (({ inputs, backend, attrs }: { inputs: Record<string, tf.TensorInfo>; backend: { data: { get(id: object): { values: Float32Array } }; makeTensorInfo(s: number[], d: string, v: Float32Array): tf.TensorInfo; allocate(n: number): Float32Array }; attrs: Record<string, number> }) => {
    const { learningRate, beta1, beta2, epsilon, correction1, correction2 } = attrs as Record<string, number>;
    const [w, g, m0, v0] = [inputs.value!, inputs.gradient!, inputs.m!, inputs.v!].map((t) => backend.data.get(t.dataId).values) as Float32Array[];
    const [w1, m1, v1] = [0, 1, 2].map(() => backend.allocate(w!.length)) as Float32Array[];
    for (let i = 0; i < w!.length; i++) {
      const gi = g![i]!;
      const mi = beta1! * m0![i]! + (1 - beta1!) * gi;
      const vi = beta2! * v0![i]! + (1 - beta2!) * gi * gi;
      m1![i] = mi;
      v1![i] = vi;
      w1![i] = w![i]! - (learningRate! * (mi / correction1!)) / (Math.sqrt(vi / correction2!) + epsilon!);
    }
    return [w1, m1, v1].map((out) => backend.makeTensorInfo(inputs.value!.shape, 'float32', out!));
  }) as unknown as tf.KernelFunc,
});

if (only.has('adam')) {
const shape = [32000, 512];
const weights = { tfjs: tf.variable(tf.randomNormal(shape, 0, 0.02, 'float32', 1)), fused: tf.variable(tf.randomNormal(shape, 0, 0.02, 'float32', 1)) };
const js = { w: tf.variable(tf.randomNormal(shape, 0, 0.02, 'float32', 1)), m: tf.variable(tf.zeros(shape)), v: tf.variable(tf.zeros(shape)) };
const gradient = tf.randomNormal(shape, 0, 1e-3, 'float32', 2);
const tfjsAdam = tf.train.adam(1e-4);
const fusedAdam = adam(1e-4);
const adamTimes = compare({
  'tf.train.adam': () => tfjsAdam.applyGradients([{ name: weights.tfjs.name, tensor: gradient }]),
  'JS-loop kernel (before)': () =>
    tf.tidy(() => {
      const [w, m, v] = tf.engine().runKernel('BenchAdamJs', { value: js.w, gradient, m: js.m, v: js.v }, { learningRate: 1e-4, beta1: 0.9, beta2: 0.999, epsilon: 1e-7, correction1: 0.1, correction2: 0.001 }) as unknown as tf.Tensor[];
      js.m.assign(m!);
      js.v.assign(v!);
      js.w.assign(w!);
    }),
  'C kernel, in place (after)': () => fusedAdam.applyGradients([{ name: weights.fused.name, tensor: gradient }]),
});
console.log('adam step, one [32000, 512] weight, ms:', adamTimes);
}

if (only.has('ce')) {
const logits = tf.randomNormal([512, 32000], 0, 2, 'float32', 3) as tf.Tensor2D;
const targets = tf.tensor1d(Array.from({ length: 512 }, (_, i) => (i * 7919) % 32000), 'int32');
// Braces: tf.tidy walks whatever its function returns for tensors, key by key.
const ceStep = (ce: typeof crossEntropy) => () => tf.tidy(() => {
  tf.grad((l: tf.Tensor) => ce(l as tf.Tensor2D, targets).mean())(logits).dataSync();
});
const ceForward = (ce: typeof crossEntropy) => () => tf.tidy(() => {
  ce(logits, targets).dataSync();
});
console.log('cross-entropy [512, 32000] forward, ms:', compare({ reference: ceForward(referenceCrossEntropy), fused: ceForward(crossEntropy) }));
console.log('cross-entropy [512, 32000] forward + gradient, ms:', compare({ reference: ceStep(referenceCrossEntropy), fused: ceStep(crossEntropy) }));
}

if (only.has('kl')) {
const student = tf.randomNormal([4, 128, 32000], 0, 2, 'float32', 4);
const teacher = tf.randomNormal([4, 128, 32000], 0, 3, 'float32', 5);
const klStep = (kl: typeof klDivergence) => () => tf.tidy(() => {
  tf.grad((s: tf.Tensor) => kl(s, teacher, 2).mean().mul(4))(student).dataSync();
});
const klForward = (kl: typeof klDivergence) => () => tf.tidy(() => {
  kl(student, teacher, 2).dataSync();
});
console.log('KL T=2 [4, 128, 32000] forward, ms:', compare({ reference: klForward(referenceKlDivergence), fused: klForward(klDivergence) }));
console.log('KL T=2 [4, 128, 32000] forward + student gradient, ms:', compare({ reference: klStep(referenceKlDivergence), fused: klStep(klDivergence) }));
}
console.log('threads', (await import('../src/kernels/native/index.js')).getNumThreads(), 'load', (await import('node:os')).loadavg().map((x) => x.toFixed(1)).join(' '));
