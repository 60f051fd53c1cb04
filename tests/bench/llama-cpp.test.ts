import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runLlamaCppBench } from '../../bench/llama-cpp.js';

/**
 * A peer folder whose node-llama-cpp is a stand-in: every model evaluates tokens after a fixed
 * wait per token (prefill 1 ms per token, decode 10 ms), so the rates the bench computes are known.
 */
function fakePeer(files: string[]): string {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-llama-cpp-'));
  writeFileSync(join(dir, 'package.json'), '{"name":"peer","private":true}');
  const pkg = join(dir, 'node_modules', 'node-llama-cpp');
  mkdirSync(pkg, { recursive: true });
  writeFileSync(join(pkg, 'package.json'), JSON.stringify({ name: 'node-llama-cpp', type: 'module', exports: { '.': { default: './index.js' } } }));
  writeFileSync(
    join(pkg, 'index.js'),
    `import { existsSync } from 'node:fs';
const wait = (ms) => { const end = performance.now() + ms; while (performance.now() < end); };
export async function getLlama() {
  return { async loadModel({ modelPath }) {
    if (!existsSync(modelPath)) throw new Error('no model ' + modelPath);
    return { async dispose() {}, async createContext() {
      return { async dispose() {}, getSequence() {
        return { dispose() {},
          async evaluateWithoutGeneratingNewTokens(tokens) { wait(tokens.length); },
          async *evaluate() { for (;;) { wait(10); yield 1; } } };
      } };
    } };
  } };
}
`,
  );
  for (const f of files) writeFileSync(join(dir, f), '');
  return dir;
}

describe('llama.cpp beside the precision bench (bench/llama-cpp.ts)', () => {
  const dirs: string[] = [];
  afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

  it('times each GGUF type in a child process and divides the same run\'s Tessera keys by the matching type', () => {
    const dir = fakePeer(['llama-small-F32.gguf', 'llama-small-Q8_0.gguf']);
    dirs.push(dir);
    const rows: string[] = [];
    const tessera = { llama_small_decode_fp32_tok_s: 50, llama_small_decode_int8_tok_s: 200, llama_small_prefill64_fp32_tok_s: 500, llama_small_decode_bf16_tok_s: 80 };
    const result = runLlamaCppBench({ dir, prefill: 64, newTokens: 4, row: (name) => rows.push(name) }, tessera);
    // ~1 ms per prefill token and ~10 ms per decode token in the stand-in (upper bounds: a busy machine only slows it).
    expect(result.llama_small_prefill64_llama_cpp_F32_tok_s).toBeLessThanOrEqual(1000);
    expect(result.llama_small_prefill64_llama_cpp_F32_tok_s).toBeGreaterThan(100);
    expect(result.llama_small_decode_llama_cpp_Q8_0_tok_s).toBeLessThanOrEqual(100);
    expect(result.llama_small_decode_fp32_vs_llama_cpp).toBeCloseTo(50 / result.llama_small_decode_llama_cpp_F32_tok_s!, 10);
    expect(result.llama_small_decode_int8_vs_llama_cpp).toBeCloseTo(200 / result.llama_small_decode_llama_cpp_Q8_0_tok_s!, 10);
    expect(result.llama_small_prefill64_fp32_vs_llama_cpp).toBeCloseTo(500 / result.llama_small_prefill64_llama_cpp_F32_tok_s!, 10);
    // No F16 file: bf16 has nothing to be compared with, and Mamba's files are absent altogether.
    expect(result.llama_small_decode_bf16_vs_llama_cpp).toBeUndefined();
    expect(Object.keys(result).some((k) => k.startsWith('mamba130m'))).toBe(false);
  }, 120_000);

  it('leaves the keys out, with a warning, when the folder has no GGUF files or no node-llama-cpp', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tessera-llama-cpp-empty-'));
    dirs.push(dir);
    expect(runLlamaCppBench({ dir, prefill: 8, newTokens: 2, row: () => undefined }, {})).toEqual({});
    writeFileSync(join(dir, 'mamba-130m-F32.gguf'), '');
    expect(runLlamaCppBench({ dir, prefill: 8, newTokens: 2, row: () => undefined }, {})).toEqual({});
  }, 120_000);
});
