/**
 * The train part of `npm run bench` (issue 14's workloads): one optimiser step of a Llama student,
 * one Distiller step from a Llama-small teacher into it, and the same into a Mamba student.
 */
import * as tf from '@tensorflow/tfjs-core';
import { activeBackend, initBackend } from '../src/kernels/backend.js';
import { AutoCausalLM } from '../src/loaders/auto.js';
import type { CausalLM } from '../src/models/causal-lm.js';
import { disposeOutput } from '../src/models/transformer.js';
import { Distiller } from '../src/training/distiller.js';
import { adam } from '../src/training/adam.js';
import { registerGradients } from '../src/training/gradients.js';
import { nextTokenCrossEntropy } from '../src/training/losses.js';
import { pseudoRandomIds } from './ids.js';
import { trainLayerMap, trainSizes, type TrainBatch } from './train-sizes.js';

export { trainSizes, type TrainBatch } from './train-sizes.js';

/** Median wall time of `runs` calls after one warm-up, in seconds. */
function median(runs: number, fn: () => void): number {
  fn();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    fn();
    times.push((performance.now() - t0) / 1000);
  }
  return times.sort((a, b) => a - b)[Math.floor(runs / 2)]!;
}

function randomIds([batch, length]: TrainBatch, vocab: number): tf.Tensor2D {
  return tf.tensor2d(pseudoRandomIds(batch * length, vocab, 7), [batch, length], 'int32');
}

/** Multiply-adds ×2 × 3 (forward, and the two products of the backward) per token, plus attention's. */
function trainFlopsPerToken(lm: CausalLM, config: { hidden_size: number; num_hidden_layers: number }, length: number): number {
  const nonEmbedding = lm.parameterCount() - lm.embeddings.word.weight.size;
  const attention = 4 * length * config.hidden_size * config.num_hidden_layers; // QKᵀ and PV, forward
  return 6 * nonEmbedding + 3 * attention;
}

/**
 * One optimiser step of `student` on next-token cross-entropy over `ids`, the student
 * workload (also what `bench/profile.ts train` profiles).
 */
export function studentStep(student: CausalLM, ids: tf.Tensor2D, optimizer: tf.Optimizer): () => void {
  const variables = student.namedParameters().map(([, v]) => v);
  return () => {
    const cost = optimizer.minimize(() => {
      const out = student.forward(ids);
      const loss = nextTokenCrossEntropy(out.logits, ids);
      disposeOutput(out);
      return loss;
    }, true, variables)!;
    cost.dataSync();
    cost.dispose();
  };
}

export interface TrainOptions {
  quick: boolean;
  /** Override the batch (the models keep their size): for machines where the full step is too slow. */
  batch?: TrainBatch;
  row: (name: string, value: number, unit: string) => void;
}

/**
 * Runs the three training workloads; returns the `train_*` keys (`train_flops` is the student
 * step's FLOP/s, turned into `train_engine_fraction` by the caller against its matmul ceiling).
 */
export async function runTrainBench(options: TrainOptions): Promise<Record<string, number>> {
  await registerGradients();
  const size = trainSizes(options.quick);
  const batch = options.batch ?? size.batch;
  const tokens = batch[0] * batch[1];
  const runs = options.quick ? 1 : 3;
  const result: Record<string, number> = { train_batch: batch[0], train_length: batch[1] };
  const ids = randomIds(batch, size.student.vocab_size);

  const student = AutoCausalLM.fromConfig(size.student, { seed: 1 });
  {
    const optimizer = adam(1e-4);
    const seconds = median(runs, studentStep(student, ids, optimizer));
    optimizer.dispose();
    result.train_student_step_tok_s = tokens / seconds;
    result.train_flops = (tokens / seconds) * trainFlopsPerToken(student, size.student, batch[1]);
    options.row(`train: llama student step ${batch[0]}x${batch[1]}`, result.train_student_step_tok_s, 'tok/s');
    options.row('  model GFLOP/s', result.train_flops / 1e9, 'GFLOP/s');
  }

  const teacher = AutoCausalLM.fromConfig(size.teacher, { seed: 2 });
  const distil = (learner: CausalLM): number => {
    const optimizer = adam(1e-4);
    const distiller = new Distiller({
      teacher,
      student: learner,
      optimizer,
      logits: { temperature: 2, weight: 1 },
      hidden: { loss: 'mse', weight: 1 },
      matchEmbeddings: false,
      layerMap: trainLayerMap(learner.layers.length),
    });
    // The Mamba student's step is timed once after the warm-up, as the PyTorch peer times its
    // Mamba step (HF's sequential scan makes that one slow).
    const seconds = median(learner === student ? runs : 1, () => void distiller.step({ inputIds: ids }));
    distiller.dispose();
    optimizer.dispose();
    return tokens / seconds;
  };
  result.train_distill_step_tok_s = distil(student);
  options.row('train: distill step, llama-small -> llama student', result.train_distill_step_tok_s, 'tok/s');
  student.dispose();
  const mamba = AutoCausalLM.fromConfig(size.mamba, { seed: 3 });
  result.train_mamba_distill_step_tok_s = distil(mamba);
  options.row('train: distill step, llama-small -> mamba student', result.train_mamba_distill_step_tok_s, 'tok/s');
  mamba.dispose();
  teacher.dispose();
  ids.dispose();
  // The process's peak so far; the distillation steps hold the most (teacher + student + tapes).
  result.train_peak_rss_mb = process.resourceUsage().maxRSS / 1024;
  options.row('train: peak RSS (process, after the distill steps)', result.train_peak_rss_mb, 'MB');
  return result;
}

/** The wasm run's default batch: a 4×128 step there takes minutes. */
export const WASM_TRAIN_BATCH: TrainBatch = [1, 32];

/**
 * The same three workloads on the wasm backend (`--train-backend=wasm`), at `batch` (default 1×32),
 * as keys ending in `_wasm` (`train_student_step_tok_s_wasm`, ..., `train_wasm_batch`,
 * `train_wasm_length`), then back to the backend that was active. Not part of the default run:
 * it adds minutes.
 */
export async function runWasmTrainBench(options: TrainOptions): Promise<Record<string, number>> {
  const previous = activeBackend();
  await initBackend({ backend: 'wasm' });
  try {
    const batch = options.batch ?? (options.quick ? trainSizes(true).batch : WASM_TRAIN_BATCH);
    const keys = await runTrainBench({ ...options, batch, row: (name, value, unit) => options.row(`${name} [wasm]`, value, unit) });
    const result: Record<string, number> = { train_wasm_batch: batch[0], train_wasm_length: batch[1] };
    for (const key of ['train_student_step_tok_s', 'train_distill_step_tok_s', 'train_mamba_distill_step_tok_s']) result[`${key}_wasm`] = keys[key]!;
    return result;
  } finally {
    if (previous !== undefined && previous !== 'wasm') await initBackend({ backend: previous });
  }
}
