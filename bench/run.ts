/**
 * `npm run bench`: random-weight models of real size on the backend in use, against the
 * backend's own matmul and matrix-vector throughput. Prints a table, then (last line) one JSON
 * object. Options: `--quick` (tiny models: a smoke check, used by tests/bench), `--only=a,b`
 * with any of engine, bert, mamba, llama, train, precision (bench/precision.ts), bf16compute (bench/bf16-compute.ts,
 * opt-in: not in the default run), `--train-batch=BxL` (the train part's batch,
 * default 4x128, for machines where a full step is too slow) and `--backend=NAME` (or TESSERA_BACKEND).
 * `--train-backend=wasm` also runs the train workloads on wasm (keys ending in `_wasm`, at
 * `--train-wasm-batch=BxL`, default 1x32); off by default because it adds minutes.
 */
import 'reflect-metadata';
import * as tf from '@tensorflow/tfjs-core';
import { pathToFileURL } from 'node:url';
import { initBackend, type BackendName } from '../src/kernels/backend.js';
import { GenerationCache } from '../src/generation/cache.js';
import { AutoCausalLM, AutoEncoder } from '../src/loaders/auto.js';
import type { CausalLM } from '../src/models/causal-lm.js';
import { disposeOutput } from '../src/models/transformer.js';
import { pseudoRandomIds as prompt } from './ids.js';
import { runTrainBench, runWasmTrainBench, type TrainBatch } from './train.js';
import { runLlamaCppBench } from './llama-cpp.js';
import { runPrecisionBench } from './precision.js';
import { loadOnnxRuntime, onnxBertSession } from './onnx-bert.js';
import { runBf16ComputeBench } from './bf16-compute.js';

export type Part = 'engine' | 'bert' | 'mamba' | 'llama' | 'train' | 'precision' | 'bf16compute';
export const PARTS: readonly Part[] = ['engine', 'bert', 'mamba', 'llama', 'train', 'precision', 'bf16compute'];

export interface BenchOptions {
  quick?: boolean;
  only?: readonly Part[];
  /** The train part's batch × length (default 4×128; quick: 2×8). */
  trainBatch?: TrainBatch;
  /** Also run the train part on wasm (`--train-backend=wasm`), at `trainWasmBatch` (default 1×32). */
  trainWasm?: boolean;
  trainWasmBatch?: TrainBatch;
  /**
   * A folder with node-llama-cpp and GGUF files of the benchmark's shapes (`--llama-cpp=DIR`,
   * else TESSERA_LLAMA_CPP_DIR): the precision part then times llama.cpp in the same run (bench/llama-cpp.ts).
   */
  llamaCppDir?: string;
  /** Table lines go here (default console.log). */
  log?: (line: string) => void;
}

/** Sizes of the full run and of the quick smoke check. */
function sizes(quick: boolean) {
  return quick
    ? {
        bert: { hidden_size: 64, num_hidden_layers: 2, num_attention_heads: 4, intermediate_size: 128, vocab_size: 512 },
        bertBatch: [2, 16] as const,
        mamba: { hidden_size: 64, num_hidden_layers: 2, state_size: 16, expand: 2, vocab_size: 512 },
        llama: { hidden_size: 64, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, intermediate_size: 128, vocab_size: 512 },
        prefill: 32,
        newTokens: 4,
        ratioPositions: [16, 256] as const,
        matmul: [128, 256, 256] as const,
        matvec: [256, 2048] as const,
        streamingMatrices: 2,
      }
    : {
        bert: { hidden_size: 768, num_hidden_layers: 12, num_attention_heads: 12, intermediate_size: 3072, vocab_size: 30522 },
        bertBatch: [8, 128] as const,
        mamba: { hidden_size: 768, num_hidden_layers: 24, state_size: 16, expand: 2, vocab_size: 50280 },
        llama: { hidden_size: 768, num_hidden_layers: 12, num_attention_heads: 12, num_key_value_heads: 4, intermediate_size: 2048, vocab_size: 32000 },
        prefill: 512,
        newTokens: 64,
        ratioPositions: [64, 4096] as const,
        matmul: [1024, 768, 3072] as const,
        matvec: [768, 32000] as const,
        // 8 × 98 MB: over twice a 300 MB last-level cache, so each is read from memory, as in decode.
        streamingMatrices: 8,
      };
}

/** Best wall time of `runs` calls (after one warm-up), in seconds. */
function best(runs: number, fn: () => void): number {
  fn();
  let min = Infinity;
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    fn();
    min = Math.min(min, performance.now() - t0);
  }
  return min / 1000;
}

/** Weights a decode step reads: every parameter but the token embedding table (a gather), plus the tied head. */
function decodeWeightBytes(lm: CausalLM): number {
  const embedding = lm.embeddings.word.weight.size;
  return 4 * (lm.parameterCount() - embedding + (lm.tiedEmbeddings ? embedding : 0));
}

/** Multiply-adds ×2 per token of the dense layers (no embeddings, no head). */
function denseFlopsPerToken(model: { parameterCount(): number; embeddings: { word: { weight: tf.Variable } } }, head = 0): number {
  return 2 * (model.parameterCount() - model.embeddings.word.weight.size + head);
}

export async function runBench(options: BenchOptions = {}): Promise<Record<string, number | string>> {
  const log = options.log ?? ((line: string) => console.log(line));
  // bf16compute measures an opt-in mode: only when named.
  const only = new Set(options.only ?? PARTS.filter((p) => p !== 'bf16compute'));
  const size = sizes(options.quick ?? false);
  const result: Record<string, number | string> = { backend: tf.getBackend() };
  const rows: [string, string][] = [];
  const row = (name: string, value: number, unit: string): void => {
    rows.push([name, `${value.toFixed(value >= 100 ? 0 : 2)} ${unit}`]);
    log(`  ${name.padEnd(44)} ${value.toFixed(value >= 100 ? 0 : 2).padStart(10)} ${unit}`);
  };
  result.tensors_before = tf.memory().numTensors;
  log(`tessera bench on '${tf.getBackend()}'${options.quick ? ' (quick)' : ''}`);

  // The engine's own ceilings, measured in this run: at the start and again at the end, keeping
  // the better of the two, so that a busy moment does not flatter the models' fractions.
  const [m, k, n] = size.matmul;
  const [vin, vout] = size.matvec;
  const measureEngine = (): void => {
    const [a, b, v, w] = [tf.randomNormal([m, k]), tf.randomNormal([k, n]), tf.randomNormal([1, vin]), tf.randomNormal([vin, vout])];
    // The tidy callbacks return nothing: tf.tidy walks a returned typed array element by element
    // looking for tensors, which costs seconds for a 3M-element result.
    const matmul = (2 * m * k * n) / best(5, () => tf.tidy(() => void tf.matMul(a, b).dataSync())) / 1e9;
    const matvec = (4 * vin * vout) / best(10, () => tf.tidy(() => void tf.matMul(v, w).dataSync())) / 1e9;
    tf.dispose([a, b, v, w]);
    // The matvec above repeats one matrix, which then stays in a large cache; a decode step reads
    // its weights once each. This one reads each of several matrices once (working set over twice
    // the cache), for the streaming fraction reported beside decode_engine_fraction.
    const matrices = Array.from({ length: size.streamingMatrices }, () => tf.ones([vin, vout]));
    const vector = tf.ones([1, vin]);
    const streamOnce = (): number => {
      const t0 = performance.now();
      for (const m of matrices) tf.tidy(() => void tf.matMul(vector, m).dataSync());
      return (performance.now() - t0) / 1000;
    };
    streamOnce();
    const streaming = (4 * vin * vout * matrices.length) / Math.min(streamOnce(), streamOnce()) / 1e9;
    tf.dispose([...matrices, vector]);
    result.matmul_gflops = Math.max(matmul, (result.matmul_gflops as number | undefined) ?? 0);
    result.matvec_gbps = Math.max(matvec, (result.matvec_gbps as number | undefined) ?? 0);
    result.matvec_streaming_gbps = Math.max(streaming, (result.matvec_streaming_gbps as number | undefined) ?? 0);
  };
  measureEngine();
  row(`matmul [${m}x${k}]·[${k}x${n}] (start)`, result.matmul_gflops as number, 'GFLOP/s');
  row(`matvec [1x${vin}]·[${vin}x${vout}] (start)`, result.matvec_gbps as number, 'GB/s');
  row(`  streaming ${size.streamingMatrices} such matrices (start)`, result.matvec_streaming_gbps as number, 'GB/s');
  const achieved: { flops?: number; trainFlops?: number; decodeBytes: number[]; prefill: Record<string, number> } = { decodeBytes: [], prefill: {} };

  if (only.has('bert')) {
    const bert = AutoEncoder.fromConfig({ model_type: 'bert', ...size.bert });
    const [batch, length] = size.bertBatch;
    const idRows = prompt(batch * length, size.bert.vocab_size);
    const ids = tf.tensor2d(idRows, [batch, length], 'int32');
    const encode = (): void => {
      const out = bert.forward(ids);
      out.lastHiddenState.dataSync();
      disposeOutput(out);
    };
    // onnxruntime-node (the engine under transformers.js) on an ONNX graph of the same weights
    // (bench/onnx-bert.ts), when it is installed: its best case (the com.microsoft fused ops its
    // BERT optimizer writes) and the plain opset-17 graph, each checked against Tessera's output.
    const ort = await loadOnnxRuntime();
    const sessions: { name: 'fused' | 'plain'; encode: () => Promise<unknown>; release: () => Promise<void> }[] = [];
    if (ort === undefined) log('  onnxruntime-node not resolvable: bert_vs_onnxruntime skipped');
    else {
      const rows = Array.from({ length: batch }, (_, b) => idRows.slice(b * length, (b + 1) * length));
      // Not through tf.tidy: it would walk a returned typed array element by element.
      const out = bert.forward(ids);
      const mine = out.lastHiddenState.dataSync() as Float32Array;
      disposeOutput(out);
      for (const fused of [true, false]) {
        const session = await onnxBertSession(ort, bert, { fused, threads: 2 });
        const theirs = (await session.encode(rows)).data;
        let diff = 0;
        for (let i = 0; i < mine.length; i++) diff = Math.max(diff, Math.abs(mine[i]! - theirs[i]!));
        // The same computation or no comparison: float32 sums in another order differ by ~1e-5.
        if (!(diff <= 1e-3)) throw new Error(`onnxruntime's BERT (${fused ? 'fused' : 'plain'}) differs from Tessera's by ${diff}`);
        result[`bert_onnxruntime${fused ? '' : '_plain'}_max_abs_diff`] = diff;
        sessions.push({ name: fused ? 'fused' : 'plain', encode: () => session.encode(rows), release: () => session.release() });
      }
    }
    // Best of five, like the matmul it is compared with: an encode takes ~1 s and one busy second
    // on this shared 2-core VM would otherwise decide the fraction. The engines take turns, so a
    // busy moment falls on each alike.
    const rounds = options.quick ? 2 : 5;
    const times = { tessera: Infinity, fused: Infinity, plain: Infinity };
    encode();
    for (const s of sessions) await s.encode();
    for (let round = 0; round < rounds; round++) {
      let t0 = performance.now();
      encode();
      times.tessera = Math.min(times.tessera, (performance.now() - t0) / 1000);
      for (const s of sessions) {
        t0 = performance.now();
        await s.encode();
        times[s.name] = Math.min(times[s.name], (performance.now() - t0) / 1000);
      }
    }
    for (const s of sessions) await s.release();
    const tokS = (batch * length) / times.tessera;
    const attention = 4 * length * size.bert.hidden_size * size.bert.num_hidden_layers; // QKᵀ and PV
    result.bert_base_encode_tok_s = tokS;
    achieved.flops = tokS * (denseFlopsPerToken(bert) + attention);
    row(`bert encode ${batch}x${length}`, tokS, 'tok/s');
    row('  model GFLOP/s', achieved.flops / 1e9, 'GFLOP/s');
    if (sessions.length > 0) {
      // Against onnxruntime's faster graph of the two, whichever that is on this machine.
      const theirs = Math.min(times.fused, times.plain);
      result.bert_onnxruntime_tok_s = (batch * length) / theirs;
      result.bert_onnxruntime_fused_tok_s = (batch * length) / times.fused;
      result.bert_onnxruntime_plain_tok_s = (batch * length) / times.plain;
      result.bert_vs_onnxruntime = theirs / times.tessera;
      row('  onnxruntime-node, com.microsoft fused graph', result.bert_onnxruntime_fused_tok_s, 'tok/s');
      row('  onnxruntime-node, plain opset 17 graph', result.bert_onnxruntime_plain_tok_s, 'tok/s');
      row('  tessera / onnxruntime (its faster graph)', result.bert_vs_onnxruntime, '×');
    }
    ids.dispose();
    bert.dispose();
  }

  for (const arch of ['mamba', 'llama'] as const) {
    if (!only.has(arch)) continue;
    const lm = AutoCausalLM.fromConfig({ model_type: arch, ...size[arch] });
    const key = arch === 'mamba' ? 'mamba130m' : 'llama_small';
    const p = prompt(size.prefill, size[arch].vocab_size);
    lm.generate([p.slice(0, 8)], { maxNewTokens: 2 }); // warm up kernels and weight layouts
    // Prefill: one forward over the prompt that fills the caches, then the first token.
    const prefillSeconds = best(options.quick ? 1 : 3, () => lm.generate([p], { maxNewTokens: 1 }));
    // The prefill's FLOPs: every weight but the embedding table (a gather) and the head (the last
    // token's only) once per token, plus causal attention's QKᵀ and PV (half of L² each).
    const embedding = lm.embeddings.word.weight.size;
    const body = lm.parameterCount() - embedding - (lm.tiedEmbeddings ? 0 : embedding);
    const attentionFlops = arch === 'llama' ? 2 * size.prefill * size.prefill * size.llama.hidden_size * size.llama.num_hidden_layers : 0;
    achieved.prefill[key] = (2 * body * size.prefill + 2 * embedding + attentionFlops) / prefillSeconds;
    // Decode: newTokens single-token steps after a short prompt.
    const decode = (cache: GenerationCache, count: number): number => {
      const t0 = performance.now();
      lm.generate([[p[0]!]], { maxNewTokens: count, cache });
      return (performance.now() - t0) / 1000 / count;
    };
    const cache = new GenerationCache();
    lm.generate([p.slice(0, 16)], { maxNewTokens: 1, cache });
    const perToken = decode(cache, size.newTokens);
    cache.dispose();
    result[`${key}_prefill512_tok_s`] = size.prefill / prefillSeconds;
    result[`${key}_decode_tok_s`] = 1 / perToken;
    const bytesPerSecond = decodeWeightBytes(lm) / perToken;
    achieved.decodeBytes.push(bytesPerSecond);
    row(`${arch} prefill ${size.prefill}`, size.prefill / prefillSeconds, 'tok/s');
    row(`${arch} decode (batch 1)`, 1 / perToken, 'tok/s');
    row('  weight GB/s read in decode', bytesPerSecond / 1e9, 'GB/s');
    if (arch === 'mamba') {
      row('  prefill vs token-by-token', (size.prefill / prefillSeconds) * perToken, '×');
      result.mamba_prefill_vs_tokenwise = (size.prefill / prefillSeconds) * perToken;
      // Per-token decode time deep into a sequence vs near its start (the state does not grow).
      const [near, far] = size.ratioPositions;
      const filled = (position: number): GenerationCache => {
        const c = new GenerationCache();
        const chunk = Math.min(position, size.prefill);
        for (let done = 0; done < position; done += chunk) lm.generate([prompt(chunk, size.mamba.vocab_size, done + 2)], { maxNewTokens: 1, cache: c });
        return c;
      };
      // The two positions take turns, so a busy moment on the machine falls on both alike.
      const [nearCache, farCache] = [filled(near), filled(far)];
      let [nearTime, farTime] = [Infinity, Infinity];
      for (let round = 0; round < 4; round++) {
        nearTime = Math.min(nearTime, decode(nearCache, 8));
        farTime = Math.min(farTime, decode(farCache, 8));
      }
      nearCache.dispose();
      farCache.dispose();
      result.mamba_decode_ratio_4096_vs_64 = farTime / nearTime;
      row(`  decode time at ${far} / at ${near}`, result.mamba_decode_ratio_4096_vs_64 as number, '×');
    }
    lm.dispose();
  }
  if (only.has('train')) {
    const { train_flops: trainFlops, ...train } = await runTrainBench({ quick: options.quick ?? false, batch: options.trainBatch, row });
    Object.assign(result, train);
    achieved.trainFlops = trainFlops;
  }
  if (only.has('precision')) {
    // Linear weights as bfloat16 / float16 / int8 beside float32, on the native backend (bench/precision.ts).
    Object.assign(result, await runPrecisionBench({ llama: size.llama, mamba: size.mamba, prefill: size.prefill, newTokens: size.newTokens,
      streamingGbps: result.matvec_streaming_gbps as number, quick: options.quick ?? false, row }));
    const llamaCppDir = options.llamaCppDir ?? process.env.TESSERA_LLAMA_CPP_DIR;
    if (llamaCppDir !== undefined && llamaCppDir !== '') {
      Object.assign(result, runLlamaCppBench({ dir: llamaCppDir, prefill: size.prefill, newTokens: size.newTokens, row }, result));
    } else {
      console.warn('precision bench: llama.cpp not measured (give --llama-cpp=DIR or TESSERA_LLAMA_CPP_DIR)');
    }
  }
  if (only.has('bf16compute')) {
    Object.assign(result, await runBf16ComputeBench({ llama: { model_type: 'llama', ...size.llama }, mamba: { model_type: 'mamba', ...size.mamba },
      bert: size.bert, bertBatch: size.bertBatch, earlier: result, prefill: size.prefill, quick: options.quick ?? false, row }));
  }
  if (options.trainWasm) Object.assign(result, await runWasmTrainBench({ quick: options.quick ?? false, batch: options.trainWasmBatch, row }));
  measureEngine();
  row('matmul (best of start and end)', result.matmul_gflops as number, 'GFLOP/s');
  row('matvec (best of start and end)', result.matvec_gbps as number, 'GB/s');
  row('streaming matvec (best of start and end)', result.matvec_streaming_gbps as number, 'GB/s');
  if (achieved.flops !== undefined) {
    result.encode_engine_fraction = achieved.flops / ((result.matmul_gflops as number) * 1e9);
    row('encode: model FLOP/s / matmul FLOP/s', result.encode_engine_fraction as number, '');
  }
  for (const [key, flops] of Object.entries(achieved.prefill)) {
    result[`${key}_prefill_engine_fraction`] = flops / ((result.matmul_gflops as number) * 1e9);
    row(`${key} prefill: model FLOP/s / matmul FLOP/s`, result[`${key}_prefill_engine_fraction`] as number, '');
  }
  if (achieved.trainFlops !== undefined) {
    result.train_engine_fraction = achieved.trainFlops / ((result.matmul_gflops as number) * 1e9);
    row('train: student step FLOP/s / matmul FLOP/s', result.train_engine_fraction as number, '');
  }
  if (achieved.decodeBytes.length > 0) {
    // The lower of Mamba's and Llama's, so neither hides behind the other.
    result.decode_engine_fraction = Math.min(...achieved.decodeBytes) / ((result.matvec_gbps as number) * 1e9);
    row('decode: weight bytes/s / matvec bytes/s (min)', result.decode_engine_fraction as number, '');
    result.decode_streaming_fraction = Math.min(...achieved.decodeBytes) / ((result.matvec_streaming_gbps as number) * 1e9);
    row('  the same over streaming matvec bytes/s', result.decode_streaming_fraction as number, '');
  }
  result.tensors_after = tf.memory().numTensors;
  row('tensors before / after', result.tensors_after as number, `(before ${result.tensors_before})`);
  return result;
}

function trainBatch(flag: string, value: string): TrainBatch {
  const match = /^(\d+)x(\d+)$/.exec(value);
  if (match === null || Number(match[1]) < 1 || Number(match[2]) < 2) throw new Error(`${flag}: expected BxL with B >= 1 and L >= 2, e.g. 4x128, got '${value}'`);
  return [Number(match[1]), Number(match[2])];
}

function parseArgs(argv: readonly string[]): BenchOptions & { backend?: BackendName } {
  const options: BenchOptions & { backend?: BackendName } = {};
  for (const arg of argv) {
    if (arg === '--quick') options.quick = true;
    else if (arg.startsWith('--only=')) {
      const parts = arg.slice(7).split(',');
      const bad = parts.filter((p) => !PARTS.includes(p as Part));
      if (bad.length > 0) throw new Error(`--only: unknown part(s) ${bad.join(', ')}; choose from ${PARTS.join(', ')}`);
      options.only = parts as Part[];
    } else if (arg.startsWith('--train-batch=')) options.trainBatch = trainBatch('--train-batch', arg.slice(14));
    else if (arg.startsWith('--train-wasm-batch=')) options.trainWasmBatch = trainBatch('--train-wasm-batch', arg.slice(19));
    else if (arg.startsWith('--train-backend=')) {
      if (arg.slice(16) !== 'wasm') throw new Error(`--train-backend: only 'wasm' (the train part also on wasm), got '${arg.slice(16)}'`);
      options.trainWasm = true;
    } else if (arg.startsWith('--backend=')) options.backend = arg.slice(10) as BackendName;
    else if (arg.startsWith('--llama-cpp=')) options.llamaCppDir = arg.slice(12);
    else throw new Error(`unknown option '${arg}' (use --quick, --only=engine,bert,mamba,llama,train,precision,bf16compute, --train-batch=BxL, --train-backend=wasm, --train-wasm-batch=BxL, --backend=NAME, --llama-cpp=DIR)`);
  }
  return options;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const options = parseArgs(process.argv.slice(2));
  await initBackend({ backend: options.backend });
  const result = await runBench(options);
  console.log(JSON.stringify(result));
}
