/**
 * The precision part of `npm run bench` (`--only=precision`): Llama-small and Mamba-130m with
 * their linear weights held as bfloat16, float16 and int8 (docs/precision.md), beside float32 in
 * the same run and in turns (round by round), since the shared machine's speed drifts. Keys: decode and prefill
 * tok/s per dtype, the ratio to float32, `decode_streaming_fraction_<dtype>` (weight bytes read
 * per second in decode over the streaming matvec rate measured at the start of the run) and
 * `llama_small_rss_mb_<dtype>` (resident memory of a process holding a loaded Llama-small, each
 * measured in its own child process: bench/precision-rss.ts).
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { GenerationCache } from '../src/generation/cache.js';
import { AutoCausalLM } from '../src/loaders/auto.js';
import type { CausalLM } from '../src/models/causal-lm.js';
import { tensorBytes, type WeightDtype } from '../src/ops/packed-weights.js';
import { pseudoRandomIds as prompt } from './ids.js';

/** Short names of the dtypes in keys. */
export const DTYPE_KEY: Record<WeightDtype, string> = { float32: 'fp32', bfloat16: 'bf16', float16: 'f16', int8: 'int8' };

export interface PrecisionBenchOptions {
  llama: Record<string, unknown>;
  mamba: Record<string, unknown>;
  prefill: number;
  newTokens: number;
  /** The streaming matvec rate of this run, GB/s (the denominator of the streaming fractions). */
  streamingGbps: number;
  quick: boolean;
  row: (name: string, value: number, unit: string) => void;
}

/** Bytes a decode step reads: every weight but the token embedding table (a gather), plus a tied head. */
function decodeBytes(lm: CausalLM): number {
  const embedding = lm.embeddings.word.weight;
  let bytes = 0;
  for (const [, p] of lm.namedParameters()) if (p !== embedding) bytes += tensorBytes(p);
  return bytes + (lm.tiedEmbeddings ? tensorBytes(embedding) : 0);
}

interface Speed {
  prefillTokS: number;
  decodeTokS: number;
  bytesPerSecond: number;
}

/**
 * Prefill and decode speed of `config` with its linear weights as each of `dtypes`. Every dtype's
 * model is built first, then the rounds take them in turn, best
 * of 3 each (as bench/llama-cpp-peer.ts times llama.cpp: best of 3 prefills, 5 decodes): on this
 * shared 2-core machine the speed drifts over minutes, and measuring the dtypes one after the
 * other put that drift into their ratios.
 */
function measureDtypes(config: Record<string, unknown>, dtypes: readonly WeightDtype[], options: PrecisionBenchOptions): Map<WeightDtype, Speed> {
  const p = prompt(options.prefill, config.vocab_size as number);
  const models = dtypes.map((dtype) => ({ dtype, lm: AutoCausalLM.fromConfig(config, { seed: 1, dtype }), prefill: Infinity, perToken: Infinity }));
  try {
    for (const { lm } of models) lm.generate([p.slice(0, 8)], { maxNewTokens: 2 }); // warm up
    for (let round = 0; round < 3; round++) {
      for (const m of models) {
        const start = performance.now();
        m.lm.generate([p], { maxNewTokens: 1 });
        m.prefill = Math.min(m.prefill, (performance.now() - start) / 1000);
        const cache = new GenerationCache();
        m.lm.generate([p.slice(0, 16)], { maxNewTokens: 1, cache });
        const t0 = performance.now();
        m.lm.generate([[p[0]!]], { maxNewTokens: options.newTokens, cache });
        m.perToken = Math.min(m.perToken, (performance.now() - t0) / 1000 / options.newTokens);
        cache.dispose();
      }
    }
    return new Map(
      models.map(({ dtype, lm, prefill, perToken }) => [
        dtype,
        { prefillTokS: options.prefill / prefill, decodeTokS: 1 / perToken, bytesPerSecond: decodeBytes(lm) / perToken },
      ]),
    );
  } finally {
    for (const { lm } of models) lm.dispose();
  }
}

/** Resident memory (MB) of a child process holding a Llama-small of `dtype`, and of the same process before building it. */
function residentMb(config: Record<string, unknown>, dtype: WeightDtype): { total: number; model: number } | undefined {
  const script = fileURLToPath(new URL('./precision-rss.ts', import.meta.url));
  // tsx runs the TypeScript child whether this process was started by tsx or by vitest.
  const child = spawnSync(process.execPath, ['--import', 'tsx', '--expose-gc', script, dtype, JSON.stringify(config), tf.getBackend()], {
    cwd: fileURLToPath(new URL('..', import.meta.url)),
    encoding: 'utf8',
    timeout: 120_000,
  });
  const line = child.stdout?.trim().split('\n').pop() ?? '';
  try {
    const { before, after } = JSON.parse(line) as { before: number; after: number };
    return { total: after / 2 ** 20, model: (after - before) / 2 ** 20 };
  } catch {
    console.warn(`precision bench: resident memory of ${dtype} not measured (${child.stderr?.trim().split('\n').pop() ?? child.error?.message})`);
    return undefined;
  }
}

export async function runPrecisionBench(options: PrecisionBenchOptions): Promise<Record<string, number>> {
  const { row } = options;
  const result: Record<string, number> = {};
  const streaming = new Map<WeightDtype, number[]>();
  const runs: [string, Record<string, unknown>, WeightDtype[]][] = [
    ['llama_small', { model_type: 'llama', ...options.llama }, ['float32', 'bfloat16', 'float16', 'int8']],
    ['mamba130m', { model_type: 'mamba', ...options.mamba }, ['float32', 'bfloat16', 'int8']],
  ];
  for (const [key, config, dtypes] of runs) {
    let fp32Decode = 0;
    let fp32Prefill = 0;
    const speeds = measureDtypes(config, dtypes, options);
    for (const dtype of dtypes) {
      const short = DTYPE_KEY[dtype];
      const { prefillTokS, decodeTokS, bytesPerSecond } = speeds.get(dtype)!;
      result[`${key}_decode_${short}_tok_s`] = decodeTokS;
      row(`${key} decode ${dtype}`, decodeTokS, 'tok/s');
      result[`${key}_prefill${options.prefill}_${short}_tok_s`] = prefillTokS;
      row(`${key} prefill ${options.prefill} ${dtype}`, prefillTokS, 'tok/s');
      if (dtype === 'float32') {
        fp32Decode = decodeTokS;
        fp32Prefill = prefillTokS;
      } else {
        result[`${key}_decode_${short}_vs_fp32`] = decodeTokS / fp32Decode;
        row(`  decode vs float32`, decodeTokS / fp32Decode, '×');
        result[`${key}_prefill_${short}_vs_fp32`] = prefillTokS / fp32Prefill;
      }
      row('  weight GB/s read in decode', bytesPerSecond / 1e9, 'GB/s');
      streaming.set(dtype, [...(streaming.get(dtype) ?? []), bytesPerSecond]);
    }
  }
  for (const [dtype, rates] of streaming) {
    // The lower of the models measured, so neither hides behind the other.
    const fraction = Math.min(...rates) / (options.streamingGbps * 1e9);
    result[`decode_streaming_fraction_${dtype}`] = fraction;
    row(`decode bytes/s / streaming matvec (${dtype})`, fraction, '');
  }
  const rss: Partial<Record<WeightDtype, { total: number; model: number }>> = {};
  for (const dtype of ['float32', 'bfloat16', 'float16', 'int8'] as const) {
    const measured = residentMb({ model_type: 'llama', ...options.llama }, dtype);
    if (measured === undefined) continue;
    rss[dtype] = measured;
    result[`llama_small_rss_mb_${dtype}`] = measured.total;
    result[`llama_small_rss_model_mb_${dtype}`] = measured.model;
    row(`llama_small resident memory ${dtype}`, measured.total, `MB (model ${measured.model.toFixed(0)} MB)`);
  }
  if (rss.float32 !== undefined && rss.bfloat16 !== undefined) {
    result.llama_small_rss_model_bf16_vs_fp32 = rss.bfloat16.model / rss.float32.model;
    row('  bf16 model memory / float32', result.llama_small_rss_model_bf16_vs_fp32, '×');
  }
  return result;
}
