/**
 * The bf16compute part of `npm run bench` (`--only=bf16compute`): the opt-in bfloat16 compute
 * (setMatmulPrecision('bfloat16'), native/src/gemm-bf16.c) beside the default float32 compute,
 * interleaved in one run (the shared machine's speed drifts), best of N. Keys:
 * - `matmul_bf16_gflops` / `matmul_fp32_gflops` (and `_n<N>` per shape): x [512, 768] times a
 *   [N, 768] weight, N = 768, 2048, 32000 (a prefill's projections and LM head), bf16 GEMM
 *   against OpenBLAS's sgemm;
 * - `llama_small_prefill<P>[_<dtype>]_{bf16,fp32}compute_tok_s`: Llama-small prefill of P (512)
 *   tokens with float32 / bf16 / f16 / int8 weights;
 * - `llama_small_logits_bf16compute_max_abs_err[_<dtype>]` and `..._max_rel_err` (over max |logit|)
 *   of that prefill against the same weights in float32 compute;
 * - `mamba130m_prefill<P>_<dtype>_{bf16,fp32}compute_tok_s` for bfloat16 and int8 weights;
 * - `<model>_prefill<P>_<dtype>_bf16compute_vs_llama_cpp`: against the llama.cpp prefill of the
 *   same width measured earlier in the run (the precision part with `--llama-cpp=DIR`), if any;
 * - `bert_base_encode_{bf16,fp32}compute_tok_s` (BERT-base, the bert part's batch), and
 *   `bert_bf16compute_vs_onnxruntime` against onnxruntime measured earlier in the run (bert part);
 * - `train_student_loss_{fp32,bf16}compute` after a few Adam steps of the train part's student,
 *   and `train_student_step_{fp32,bf16}compute_ms` (the best step);
 * - `bf16compute_amx`: 1 where the bf16 products ran on AMX tiles, 0 where on vdpbf16ps.
 * Runs only on the native backend of a CPU with AVX512_BF16 (else says why and returns nothing).
 */
import * as tf from '@tensorflow/tfjs-core';
import { loadAddon } from '../src/kernels/native/addon.js';
import { setMatmulPrecision } from '../src/kernels/native/index.js';
import { AutoCausalLM, AutoEncoder } from '../src/loaders/auto.js';
import { disposeOutput } from '../src/models/transformer.js';
import { adam } from '../src/training/adam.js';
import { registerGradients } from '../src/training/gradients.js';
import { nextTokenCrossEntropy } from '../src/training/losses.js';
import type { WeightDtype } from '../src/ops/packed-weights.js';
import { pseudoRandomIds as prompt } from './ids.js';
import { PEER_TYPE } from './llama-cpp.js';
import { DTYPE_KEY } from './precision.js';
import { trainSizes } from './train-sizes.js';

export interface Bf16ComputeBenchOptions {
  llama: Record<string, unknown>;
  mamba: Record<string, unknown>;
  bert: Record<string, unknown>;
  bertBatch: readonly [number, number];
  /** What the run measured before this part: llama.cpp's and onnxruntime's keys, if present. */
  earlier: Record<string, unknown>;
  prefill: number;
  quick: boolean;
  row: (name: string, value: number, unit: string) => void;
}

/** Best of `rounds` interleaved timings of each function (after one warm-up each), in seconds. */
function interleavedBest(rounds: number, fns: (() => void)[]): number[] {
  for (const fn of fns) fn();
  const best = fns.map(() => Infinity);
  for (let r = 0; r < rounds; r++) {
    fns.forEach((fn, i) => {
      const t0 = performance.now();
      fn();
      best[i] = Math.min(best[i]!, (performance.now() - t0) / 1000);
    });
  }
  return best;
}

function withPrecision<T>(precision: 'float32' | 'bfloat16', fn: () => T): T {
  setMatmulPrecision(precision);
  try {
    return fn();
  } finally {
    setMatmulPrecision('float32');
  }
}

export async function runBf16ComputeBench(options: Bf16ComputeBenchOptions): Promise<Record<string, number>> {
  const result: Record<string, number> = {};
  if (tf.getBackend() !== 'native') {
    console.warn(`bf16compute bench: needs the native backend, not '${tf.getBackend()}'`);
    return result;
  }
  const addon = loadAddon();
  const missing = addon.bf16Missing();
  if (missing !== null) {
    console.warn(`bf16compute bench: this CPU lacks ${missing}`);
    return result;
  }
  const rounds = options.quick ? 1 : 5;
  result.bf16compute_amx = addon.amxAvailable() ? 1 : 0;
  options.row(`bf16 products on ${addon.amxAvailable() ? 'AMX tiles' : 'vdpbf16ps (no AMX)'}`, result.bf16compute_amx, '');

  // The GEMM alone on the prefill shapes.
  const [m, k] = options.quick ? [64, 96] : [512, 768];
  let flops = 0;
  const total = { bf16: 0, fp32: 0 };
  for (const n of options.quick ? [96, 256] : [768, 2048, 32000]) {
    const x = new Float32Array(m * k).map((_, i) => Math.sin(i));
    const w = new Float32Array(n * k).map((_, i) => Math.cos(i) * 0.1);
    const out = new Float32Array(m * n);
    const idx = Int32Array.of(0);
    const [fp32, bf16] = interleavedBest(rounds, [
      () => addon.matmul(x, w, out, idx, idx, m, n, k, false, true, null, 0, 0, null),
      () => addon.gemmBf16(x, w, out, idx, idx, m, n, k, false, true, null),
    ]);
    const f = 2 * m * n * k;
    flops += f;
    total.fp32 += fp32!;
    total.bf16 += bf16!;
    result[`matmul_fp32_gflops_n${n}`] = f / fp32! / 1e9;
    result[`matmul_bf16_gflops_n${n}`] = f / bf16! / 1e9;
    options.row(`bf16 GEMM ${m}x${k} . [${n}, ${k}]^T (sgemm ${result[`matmul_fp32_gflops_n${n}`]!.toFixed(0)})`, result[`matmul_bf16_gflops_n${n}`]!, 'GFLOP/s');
  }
  result.matmul_fp32_gflops = flops / total.fp32 / 1e9;
  result.matmul_bf16_gflops = flops / total.bf16 / 1e9;
  options.row('bf16 GEMM, the three shapes together', result.matmul_bf16_gflops, 'GFLOP/s');
  options.row('  sgemm on the same', result.matmul_fp32_gflops, 'GFLOP/s');

  // Prefill per weight dtype, each compute in turn, beside llama.cpp's of the same width; for
  // Llama-small also the logits' error.
  const models = [
    { key: 'llama_small', name: 'llama-small', config: options.llama, dtypes: ['float32', 'bfloat16', 'float16', 'int8'] as WeightDtype[] },
    { key: 'mamba130m', name: 'mamba-130m', config: options.mamba, dtypes: ['bfloat16', 'int8'] as WeightDtype[] },
  ];
  for (const model of models) {
    const ids = prompt(options.prefill, model.config.vocab_size as number);
    for (const dtype of model.dtypes) {
      const lm = AutoCausalLM.fromConfig(model.config, { seed: 1, dtype });
      const base = `${model.key}_prefill${options.prefill}${dtype === 'float32' && model.key === 'llama_small' ? '' : `_${DTYPE_KEY[dtype]}`}`;
      const prefill = () => lm.generate([ids], { maxNewTokens: 1 });
      const [fp32, bf16] = interleavedBest(options.quick ? 1 : 3, [
        () => withPrecision('float32', prefill),
        () => withPrecision('bfloat16', prefill),
      ]);
      result[`${base}_fp32compute_tok_s`] = options.prefill / fp32!;
      result[`${base}_bf16compute_tok_s`] = options.prefill / bf16!;
      options.row(`${model.name} prefill ${options.prefill}, ${dtype} weights, bf16 compute`, result[`${base}_bf16compute_tok_s`]!, 'tok/s');
      options.row(`  float32 compute`, result[`${base}_fp32compute_tok_s`]!, 'tok/s');
      const peerType = PEER_TYPE[DTYPE_KEY[dtype] as keyof typeof PEER_TYPE];
      const peer = options.earlier[`${model.key}_prefill${options.prefill}_llama_cpp_${peerType}_tok_s`];
      if (typeof peer === 'number') {
        const key = `${model.key}_prefill${options.prefill}_${DTYPE_KEY[dtype]}_bf16compute_vs_llama_cpp`;
        result[key] = result[`${base}_bf16compute_tok_s`]! / peer;
        options.row(`  / llama.cpp ${peerType} prefill (${peer.toFixed(0)} tok/s, this run)`, result[key], '×');
      }
      if (model.key !== 'llama_small') {
        lm.dispose();
        continue;
      }
      const logits = (precision: 'float32' | 'bfloat16') =>
        withPrecision(precision, () =>
          tf.tidy(() => {
            const out = lm.forward(tf.tensor2d([ids], undefined, 'int32'));
            const y = Float32Array.from(out.logits.dataSync());
            disposeOutput(out);
            return y;
          }),
        );
      const ref = logits('float32');
      const y = logits('bfloat16');
      let worst = 0;
      let scale = 0;
      for (let i = 0; i < y.length; i++) {
        worst = Math.max(worst, Math.abs(y[i]! - ref[i]!));
        scale = Math.max(scale, Math.abs(ref[i]!));
      }
      const suffix = dtype === 'float32' ? '' : `_${DTYPE_KEY[dtype]}`;
      result[`llama_small_logits_bf16compute_max_abs_err${suffix}`] = worst;
      result[`llama_small_logits_bf16compute_max_rel_err${suffix}`] = worst / scale;
      options.row(`  logits max |Δ| / max |logit| (${scale.toFixed(2)})`, (worst / scale) * 1e3, '×1e-3');
      lm.dispose();
    }
  }

  // BERT-base encode, each compute in turn, beside onnxruntime (float32) from the bert part.
  {
    const bert = AutoEncoder.fromConfig({ model_type: 'bert', ...options.bert });
    const [batch, length] = options.bertBatch;
    const ids = tf.tensor2d(prompt(batch * length, options.bert.vocab_size as number), [batch, length], 'int32');
    const encode = () => {
      const out = bert.forward(ids);
      out.lastHiddenState.dataSync();
      disposeOutput(out);
    };
    const [fp32, bf16] = interleavedBest(rounds, [() => withPrecision('float32', encode), () => withPrecision('bfloat16', encode)]);
    result.bert_base_encode_fp32compute_tok_s = (batch * length) / fp32!;
    result.bert_base_encode_bf16compute_tok_s = (batch * length) / bf16!;
    options.row(`bert encode ${batch}x${length}, bf16 compute`, result.bert_base_encode_bf16compute_tok_s, 'tok/s');
    options.row('  float32 compute', result.bert_base_encode_fp32compute_tok_s, 'tok/s');
    const ort = options.earlier.bert_onnxruntime_tok_s;
    if (typeof ort === 'number') {
      result.bert_bf16compute_vs_onnxruntime = result.bert_base_encode_bf16compute_tok_s / ort;
      options.row(`  / onnxruntime float32 (${ort.toFixed(0)} tok/s, this run)`, result.bert_bf16compute_vs_onnxruntime, '×');
    }
    ids.dispose();
    bert.dispose();
  }

  // The train part's student: the loss after a few Adam steps, each compute from the same start.
  await registerGradients();
  const size = trainSizes(options.quick);
  const [batch, length] = options.quick ? [2, 8] : [2, 128];
  const steps = options.quick ? 2 : 10;
  const trainIds = tf.tensor2d(prompt(batch * length, size.student.vocab_size), [batch, length], 'int32');
  for (const precision of ['float32', 'bfloat16'] as const) {
    const student = AutoCausalLM.fromConfig(size.student, { seed: 1 });
    const variables = student.namedParameters().map(([, v]) => v);
    const optimizer = adam(1e-3);
    let loss = NaN;
    let best = Infinity;
    withPrecision(precision, () => {
      for (let s = 0; s < steps; s++) {
        const t0 = performance.now();
        const cost = optimizer.minimize(() => {
          const out = student.forward(trainIds);
          const l = nextTokenCrossEntropy(out.logits, trainIds);
          disposeOutput(out);
          return l;
        }, true, variables)!;
        loss = cost.dataSync()[0]!;
        cost.dispose();
        best = Math.min(best, performance.now() - t0);
      }
    });
    optimizer.dispose();
    student.dispose();
    const compute = precision === 'float32' ? 'fp32' : 'bf16';
    result[`train_student_loss_${compute}compute`] = loss;
    result[`train_student_step_${compute}compute_ms`] = best;
    options.row(`train: student loss after ${steps} steps (${batch}x${length}), ${precision} compute`, loss, '');
    options.row(`  best step`, best, 'ms');
  }
  trainIds.dispose();
  return result;
}
