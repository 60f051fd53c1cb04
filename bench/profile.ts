/**
 * Kernel profile of one decode step (mamba, llama), one BERT encode, or one training step of the
 * train benchmark's Llama student (forward, backward and Adam): `npx tsx bench/profile.ts
 * mamba|llama|bert [prefill|prefill-ops]` (`prefill-ops`: a 512-token prefill with a no-op hook on
 * every mixer's first tap, which selects the op-by-op path, so a fused mixer's parts are timed one by one), `train|train-mamba [BxL]` (the Llama or the Mamba student) or
 * `distill [BxL]` (the Llama student's distillation step; default 1x32; TESSERA_BACKEND picks the backend,
 * default native; TESSERA_DTYPE the decode and prefill weights' dtype, default float32; TESSERA_MATMUL_PRECISION=bfloat16 opts in to bf16 compute). Prints the kernels by total time, with their input shapes: where a model spends
 * its time.
 */
import 'reflect-metadata';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend, type BackendName } from '../src/kernels/backend.js';
import { setMatmulPrecision, type MatmulPrecision } from '../src/kernels/native/index.js';
import { GenerationCache } from '../src/generation/cache.js';
import { AutoCausalLM, AutoEncoder } from '../src/loaders/auto.js';
import { disposeOutput } from '../src/models/transformer.js';
import { adam } from '../src/training/adam.js';
import type { WeightDtype } from '../src/ops/packed-weights.js';
import { registerGradients } from '../src/training/gradients.js';
import { Distiller } from '../src/training/distiller.js';
import { studentStep } from './train.js';
import { trainLayerMap, trainSizes } from './train-sizes.js';

await initBackend({ backend: (process.env.TESSERA_BACKEND as BackendName | undefined) ?? 'native' });
if (process.env.TESSERA_MATMUL_PRECISION !== undefined) setMatmulPrecision(process.env.TESSERA_MATMUL_PRECISION as MatmulPrecision);
const which = process.argv[2] ?? 'mamba';
async function report(name: string, fn: () => void) {
  fn();
  const t0 = performance.now();
  const info = await tf.profile(fn);
  const wall = performance.now() - t0;
  const agg = new Map<string, { n: number; ms: number }>();
  let total = 0;
  for (const k of info.kernels) {
    const ms = (k.kernelTimeMs as number) ?? 0;
    const key = k.name + ' ' + JSON.stringify(k.inputShapes?.slice(0, 2));
    const e = agg.get(key) ?? { n: 0, ms: 0 };
    e.n++; e.ms += ms; total += ms; agg.set(key, e);
  }
  console.log(`${name}: ${info.kernels.length} kernels, kernel ms ${total.toFixed(1)}, wall(profiled) ${wall.toFixed(1)}`);
  const rows = [...agg.entries()].sort((a, b) => b[1].ms - a[1].ms).slice(0, 40);
  for (const [k, v] of rows) console.log(`  ${v.ms.toFixed(2).padStart(8)} ms ${String(v.n).padStart(5)}x ${k}`);
}
if (which === 'train' || which === 'train-mamba') {
  await registerGradients();
  const [batch, length] = (process.argv[3] ?? '1x32').split('x').map(Number) as [number, number];
  const sizes = trainSizes(false);
  const student = AutoCausalLM.fromConfig(which === 'train' ? sizes.student : sizes.mamba, { seed: 1 });
  const ids = tf.tensor2d(Array.from({ length: batch * length }, (_, i) => (i * 7919) % 32000), [batch, length], 'int32');
  const step = studentStep(student, ids, adam(1e-4));
  let t0 = performance.now(); step(); console.log('first step wall', performance.now() - t0);
  await report(`train step ${batch}x${length}`, step);
} else if (which === 'distill') {
  await registerGradients();
  const [batch, length] = (process.argv[3] ?? '1x32').split('x').map(Number) as [number, number];
  const sizes = trainSizes(false);
  const student = AutoCausalLM.fromConfig(sizes.student, { seed: 1 });
  const teacher = AutoCausalLM.fromConfig(sizes.teacher, { seed: 2 });
  const ids = tf.tensor2d(Array.from({ length: batch * length }, (_, i) => (i * 7919) % 32000), [batch, length], 'int32');
  const distiller = new Distiller({
    teacher,
    student,
    optimizer: adam(1e-4),
    logits: { temperature: 2, weight: 1 },
    hidden: { loss: 'mse', weight: 1 },
    matchEmbeddings: false,
    layerMap: trainLayerMap(student.layers.length),
  });
  const step = () => void distiller.step({ inputIds: ids });
  let t0 = performance.now(); step(); console.log('first step wall', performance.now() - t0);
  await report(`distill step ${batch}x${length}`, step);
} else if (which === 'bert') {
  const bert = AutoEncoder.fromConfig({ model_type: 'bert', hidden_size: 768, num_hidden_layers: 12, num_attention_heads: 12, intermediate_size: 3072, vocab_size: 30522 });
  const ids = tf.tensor2d(Array.from({ length: 1024 }, (_, i) => (i * 7919) % 30522), [8, 128], 'int32');
  const run = () => { const out = bert.forward(ids); out.lastHiddenState.dataSync(); disposeOutput(out); };
  run();
  let t0 = performance.now(); run(); console.log('wall', performance.now() - t0);
  await report('bert', run);
} else {
  const cfg = which === 'mamba'
    ? { model_type: 'mamba', hidden_size: 768, num_hidden_layers: 24, state_size: 16, expand: 2, vocab_size: 50280 }
    : { model_type: 'llama', hidden_size: 768, num_hidden_layers: 12, num_attention_heads: 12, num_key_value_heads: 4, intermediate_size: 2048, vocab_size: 32000 };
  const lm = AutoCausalLM.fromConfig(cfg, { dtype: (process.env.TESSERA_DTYPE as WeightDtype | undefined) ?? 'float32' });
  if (process.argv[3] === 'prefill-ops') {
    for (const layer of lm.layers.items) {
      const tap = layer.mixer.ownHookPoints()[1];
      if (tap !== undefined) layer.mixer.attachHook(tap, 'post', () => undefined);
    }
  }
  const cache = new GenerationCache();
  lm.generate([[1, 2, 3, 4, 5, 6, 7, 8]], { maxNewTokens: 1, cache });
  const step = () => { lm.generate([[5]], { maxNewTokens: 1, cache }); };
  step();
  let t0 = performance.now(); for (let i = 0; i < 8; i++) step(); console.log('wall per token', (performance.now() - t0) / 8);
  await report(which + ' decode', step);
  if (process.argv[3] === 'prefill' || process.argv[3] === 'prefill-ops') {
    const p = Array.from({ length: 512 }, (_, i) => (i * 7919) % 30000);
    const pre = () => { lm.generate([p], { maxNewTokens: 1 }); };
    t0 = performance.now(); pre(); console.log('prefill wall', performance.now() - t0);
    await report(which + ' prefill', pre);
  }
}
