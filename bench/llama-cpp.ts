/**
 * llama.cpp beside Tessera in one benchmark run, when a folder with node-llama-cpp and GGUF files
 * of the benchmark's shapes is given (`--llama-cpp=DIR` or TESSERA_LLAMA_CPP_DIR; the PyTorch
 * peers' README says how to make one). Each model is timed in a child process
 * (bench/llama-cpp-peer.ts), so llama.cpp's threads and memory stay out of Tessera's figures.
 * Keys: `<model>_{prefill<N>,decode}_llama_cpp_<type>_tok_s` and, against Tessera's keys of the
 * same run, `<model>_decode_<dtype>_vs_llama_cpp` / `<model>_prefill<N>_<dtype>_vs_llama_cpp`
 * (fp32 against F32, bf16 and f16 against F16, int8 against Q8_0).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Which llama.cpp weight type each Tessera dtype key is compared with. */
export const PEER_TYPE = { fp32: 'F32', bf16: 'F16', f16: 'F16', int8: 'Q8_0' } as const;
const MODELS = [
  { key: 'llama_small', gguf: 'llama-small', vocab: 32000 },
  { key: 'mamba130m', gguf: 'mamba-130m', vocab: 50280 },
] as const;

export interface LlamaCppOptions {
  dir: string;
  prefill: number;
  newTokens: number;
  row: (name: string, value: number, unit: string) => void;
}

/**
 * Time llama.cpp on each model whose GGUF files are in `dir`, and the ratios to the Tessera keys
 * already in `tessera` (this run's precision part). Missing files or a failing child are reported
 * on stderr and leave their keys out.
 */
export function runLlamaCppBench(options: LlamaCppOptions, tessera: Record<string, unknown>): Record<string, number> {
  const { dir, prefill, newTokens, row } = options;
  const result: Record<string, number> = {};
  const script = fileURLToPath(new URL('./llama-cpp-peer.ts', import.meta.url));
  for (const model of MODELS) {
    const types = [...new Set(Object.values(PEER_TYPE))].filter((t) => existsSync(join(dir, `${model.gguf}-${t}.gguf`)));
    if (types.length === 0) {
      console.warn(`llama.cpp peer: no ${model.gguf}-{F32,F16,Q8_0}.gguf in ${dir}; ${model.key} not compared`);
      continue;
    }
    const child = spawnSync(process.execPath, ['--import', 'tsx', script, dir, model.gguf, String(prefill), String(newTokens), String(model.vocab), ...types], {
      cwd: fileURLToPath(new URL('..', import.meta.url)),
      encoding: 'utf8',
      timeout: 600_000,
      env: process.env,
    });
    let measured: Record<string, { prefill_tok_s: number; decode_tok_s: number }>;
    try {
      measured = JSON.parse(child.stdout.trim().split('\n').pop() ?? '') as typeof measured;
    } catch {
      console.warn(`llama.cpp peer: ${model.gguf} not measured (${child.stderr?.trim().split('\n').pop() ?? child.error?.message})`);
      continue;
    }
    for (const [type, m] of Object.entries(measured)) {
      result[`${model.key}_prefill${prefill}_llama_cpp_${type}_tok_s`] = m.prefill_tok_s;
      result[`${model.key}_decode_llama_cpp_${type}_tok_s`] = m.decode_tok_s;
      row(`llama.cpp ${model.gguf} ${type} prefill ${prefill} / decode`, m.prefill_tok_s, `tok/s / ${m.decode_tok_s.toFixed(1)} tok/s`);
    }
    for (const [dtype, type] of Object.entries(PEER_TYPE)) {
      const peer = measured[type];
      if (peer === undefined) continue;
      const decode = tessera[`${model.key}_decode_${dtype}_tok_s`];
      const pre = tessera[`${model.key}_prefill${prefill}_${dtype}_tok_s`];
      if (typeof decode === 'number') {
        result[`${model.key}_decode_${dtype}_vs_llama_cpp`] = decode / peer.decode_tok_s;
        row(`  ${model.key} decode ${dtype} / llama.cpp ${type}`, decode / peer.decode_tok_s, '×');
      }
      if (typeof pre === 'number') {
        result[`${model.key}_prefill${prefill}_${dtype}_vs_llama_cpp`] = pre / peer.prefill_tok_s;
        row(`  ${model.key} prefill ${dtype} / llama.cpp ${type}`, pre / peer.prefill_tok_s, '×');
      }
    }
  }
  return result;
}
