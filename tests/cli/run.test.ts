// `tessera generate`, `embed` and `export` through the binary, each compared with the same
// computation done here with the library.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { AutoCausalLM, AutoEncoder, AutoMaskedLM, AutoTokenizer, disposeOutput, loadTextGenerationPipeline, loadFeatureExtractionPipeline, type TextGenerationCallOptions, type WeightDtype } from '../../src/index.js';
import { loadAddon } from '../../src/kernels/native/addon.js';
import { oneLineError, runCli } from './run-cli.js';

const FIX = join(import.meta.dirname, '..', 'fixtures');
const BERT = join(FIX, 'bert-tiny');
let work: string;
/** llama-tiny's weights with bert-tiny's tokenizer (same 512-token vocabulary): a causal LM with text in and out. */
let lmDir: string;
const PROMPT = 'the cat sat on the mat';

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'tessera-cli-'));
  lmDir = join(work, 'lm');
  mkdirSync(lmDir);
  for (const f of ['config.json', 'model.safetensors']) copyFileSync(join(FIX, 'llama-tiny', f), join(lmDir, f));
  for (const f of ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'vocab.txt']) copyFileSync(join(BERT, f), join(lmDir, f));
});

afterAll(() => {
  expect(tf.memory().numTensors).toBe(0);
});

/** The library's continuation of PROMPT: the text-generation pipeline called in this process. */
async function reference(options: TextGenerationCallOptions, load: { dtype?: WeightDtype } = {}): Promise<string> {
  const pipe = await loadTextGenerationPipeline(lmDir, load);
  try {
    const [result] = await pipe(PROMPT, { ...options, returnFullText: false });
    return result!.generatedText;
  } finally {
    pipe.dispose();
  }
}

describe('tessera generate', () => {
  it('streams the greedy continuation, and sampling with a seed is the library\'s sampling', async () => {
    const sampling = { kind: 'sample', temperature: 0.9, topK: 50, topP: 0.95 } as const;
    const [greedy, sampled, expectedGreedy, expectedSampled] = await Promise.all([
      runCli(['generate', lmDir, PROMPT, '--max-new-tokens', '12']),
      runCli(['generate', lmDir, PROMPT, '-n', '12', '--temperature', '0.9', '--top-k', '50', '--top-p', '0.95', '--seed', '7']),
      reference({ maxNewTokens: 12 }),
      reference({ maxNewTokens: 12, strategy: sampling, seed: 7 }),
    ]);
    expect(greedy.code).toBe(0);
    expect(greedy.stdout).toBe(`${expectedGreedy}\n`);
    expect(expectedGreedy.length).toBeGreaterThan(0);
    expect(greedy.tensorsLeft).toBe(0);
    expect(sampled.code).toBe(0);
    expect(sampled.stdout).toBe(`${expectedSampled}\n`);
    expect(sampled.stdout).not.toBe(greedy.stdout);
  });

  it('--stop ends the text where the stop string starts', async () => {
    const full = await reference({ maxNewTokens: 12 });
    const words = full.split(' ');
    expect(words.length).toBeGreaterThan(3);
    const stop = words[2]!;
    const run = await runCli(['generate', lmDir, PROMPT, '-n', '12', '--stop', 'no such text', '--stop', stop]);
    expect(run.code).toBe(0);
    expect(run.stdout).toBe(`${full.slice(0, full.indexOf(stop))}\n`);
    expect(run.tensorsLeft).toBe(0);
  });
});

describe('tessera generate/embed --dtype', () => {
  it('loads the weights as the library does with that dtype, and refuses a dtype it does not know', async () => {
    const texts = ['the cat sat on the mat'];
    const extractF16 = await loadFeatureExtractionPipeline(BERT, { dtype: 'float16' });
    const wantF16 = await extractF16(texts);
    extractF16.dispose();
    const [bf16, want, embedded, bad] = await Promise.all([
      runCli(['generate', lmDir, PROMPT, '-n', '8', '--dtype', 'bfloat16']),
      reference({ maxNewTokens: 8 }, { dtype: 'bfloat16' }),
      runCli(['embed', BERT, ...texts, '--dtype', 'float16']),
      runCli(['generate', lmDir, PROMPT, '--dtype', 'int4']),
    ]);
    expect(bf16.code).toBe(0);
    expect(bf16.stdout).toBe(`${want}\n`);
    expect(bf16.tensorsLeft).toBe(0);
    expect(embedded.code).toBe(0);
    const got = JSON.parse(embedded.stdout.trim()) as number[];
    got.forEach((x, h) => expect(x).toBeCloseTo(wantF16[0]![h]!, 5));
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--dtype.*'int4' is invalid.*float32, bfloat16, float16, int8/s);
  });
});

describe('tessera --matmul-precision', () => {
  it('bfloat16 embeds with bf16 compute on the native backend (where the CPU has it), and is refused elsewhere or when unknown', async () => {
    const texts = ['the cat sat on the mat'];
    const [float32, bf16, onWasm, bad] = await Promise.all([
      runCli(['--backend', 'native', 'embed', BERT, ...texts], { env: { TESSERA_BACKEND: undefined } }),
      runCli(['--backend', 'native', '--matmul-precision', 'bfloat16', 'embed', BERT, ...texts], { env: { TESSERA_BACKEND: undefined } }),
      runCli(['--backend', 'wasm', '--matmul-precision', 'bfloat16', 'embed', BERT, ...texts], { env: { TESSERA_BACKEND: undefined } }),
      runCli(['--matmul-precision', 'half', 'embed', BERT, ...texts]),
    ]);
    expect(onWasm.code).toBe(1);
    expect(oneLineError(onWasm.stderr)).toMatch(/setMatmulPrecision\('bfloat16'\) applies to the 'native' backend only; the active backend is 'wasm'/);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--matmul-precision.*'half' is invalid.*float32, bfloat16/s);
    if (float32.code !== 0) {
      // No native addon here: both native runs fail alike, naming the build.
      expect(oneLineError(float32.stderr)).toMatch(/native backend is not built/);
      expect(oneLineError(bf16.stderr)).toMatch(/native backend is not built/);
      return;
    }
    if (bf16.code !== 0) {
      expect(oneLineError(bf16.stderr)).toMatch(/bfloat16 matmul precision needs a CPU with AVX512_BF16; this one lacks/);
      return;
    }
    expect(bf16.tensorsLeft).toBe(0);
    const [a, b] = [float32, bf16].map((r) => JSON.parse(r.stdout.trim()) as number[]);
    // bert-tiny's products are below the bf16 GEMM's size threshold; its attention takes bf16 on AMX.
    const scale = Math.max(...a!.map(Math.abs));
    b!.forEach((x, h) => expect(Math.abs(x - a![h]!)).toBeLessThanOrEqual(32 * 2 ** -9 * scale));
    if (loadAddon().amxAvailable()) expect(b!.some((x, h) => x !== a![h]), 'bf16 attention not applied').toBe(true);
  });
});

describe('tessera embed', () => {
  const texts = ['the cat sat on the mat', 'a dog'];

  /** Mean or first-token pooled last hidden states, computed here. */
  async function expected(pooling: 'mean' | 'cls', normalize: boolean): Promise<number[][]> {
    const tokenizer = await AutoTokenizer.fromDir(BERT);
    const model = await AutoEncoder.fromDir(BERT);
    const enc = tokenizer.encode(texts);
    const out = model.forward(enc.inputIds, { attentionMask: enc.attentionMask, tokenTypeIds: enc.tokenTypeIds });
    const hidden = (await out.lastHiddenState.array()) as number[][][];
    disposeOutput(out);
    tf.dispose([enc.inputIds, enc.attentionMask, enc.tokenTypeIds]);
    model.dispose();
    return hidden.map((rows, b) => {
      const real = rows.slice(0, enc.ids[b]!.filter((id) => id !== 0).length); // [PAD] is 0, right-padded
      const v = pooling === 'cls' ? rows[0]! : real[0]!.map((_, h) => real.reduce((s, r) => s + r[h]!, 0) / real.length);
      const norm = Math.hypot(...v);
      return normalize ? v.map((x) => x / norm) : v;
    });
  }

  it('prints one JSON array per text (mean pooling), or one document with --json (cls, normalized)', async () => {
    const [mean, cls, wantMean, wantCls] = await Promise.all([
      runCli(['embed', BERT, ...texts]),
      runCli(['embed', BERT, ...texts, '--pooling', 'cls', '--normalize', '--json']),
      expected('mean', false),
      expected('cls', true),
    ]);
    expect(mean.code).toBe(0);
    expect(mean.tensorsLeft).toBe(0);
    const lines = mean.stdout.trim().split('\n').map((l) => JSON.parse(l) as number[]);
    expect(lines).toHaveLength(2);
    lines.forEach((v, i) => v.forEach((x, h) => expect(x).toBeCloseTo(wantMean[i]![h]!, 5)));
    expect(cls.code).toBe(0);
    const doc = JSON.parse(cls.stdout);
    expect(doc).toMatchObject({ pooling: 'cls', normalize: true });
    expect(doc.embeddings).toHaveLength(2);
    (doc.embeddings as number[][]).forEach((v, i) => {
      expect(Math.hypot(...v)).toBeCloseTo(1, 5);
      v.forEach((x, h) => expect(x).toBeCloseTo(wantCls[i]![h]!, 5));
    });
  });
});

describe('tessera export', () => {
  it('writes an HF folder and a Tessera checkpoint that load back with the same outputs', async () => {
    const hfDir = join(work, 'export-hf');
    const tesseraDir = join(work, 'export-tessera');
    const [hf, own] = await Promise.all([
      runCli(['export', BERT, hfDir, '--format', 'hf']),
      runCli(['export', join(FIX, 'jamba-tiny'), tesseraDir, '--format', 'tessera']),
    ]);
    expect(hf.code).toBe(0);
    expect(hf.stdout).toBe(`${hfDir}\n`);
    expect(hf.tensorsLeft).toBe(0);
    expect(readdirSync(hfDir)).toEqual(expect.arrayContaining(['config.json', 'model.safetensors', 'vocab.txt']));
    expect(own.code).toBe(0);

    const ids = tf.tensor2d([[2, 40, 41, 42, 3]], undefined, 'int32');
    for (const [Loader, original, saved] of [
      [AutoEncoder, BERT, hfDir],
      [AutoCausalLM, join(FIX, 'jamba-tiny'), tesseraDir],
    ] as const) {
      const a = await (Loader as typeof AutoEncoder).fromDir(original);
      const b = await (Loader as typeof AutoEncoder).fromDir(saved);
      const outA = a.forward(ids);
      const outB = b.forward(ids);
      expect(tf.tidy(() => tf.max(tf.abs(tf.sub(outA.lastHiddenState, outB.lastHiddenState))).dataSync()[0])).toBeLessThan(1e-6);
      disposeOutput(outA);
      disposeOutput(outB);
      a.dispose();
      b.dispose();
    }
    ids.dispose();
  });

  it('keeps the masked-LM head of a checkpoint that declares one (inspect and export)', async () => {
    const mlm = join(FIX, 'bert-mlm-tiny');
    const out = join(work, 'export-mlm');
    const [inspect, exported] = await Promise.all([runCli(['inspect', mlm, '--json']), runCli(['export', mlm, out])]);
    expect(inspect.code).toBe(0);
    expect(JSON.parse(inspect.stdout).kind).toBe('masked-lm');
    expect(exported.code).toBe(0);
    const ids = tf.tensor2d([[2, 40, 4, 42, 3]], undefined, 'int32');
    const a = await AutoMaskedLM.fromDir(mlm);
    const b = await AutoMaskedLM.fromDir(out);
    const outA = a.forward(ids);
    const outB = b.forward(ids);
    expect(tf.tidy(() => tf.max(tf.abs(tf.sub(outA.logits, outB.logits))).dataSync()[0])).toBeLessThan(1e-6);
    disposeOutput(outA);
    disposeOutput(outB);
    a.dispose();
    b.dispose();
    ids.dispose();
  });

  it('refuses a non-empty folder without --overwrite, before loading anything', async () => {
    const dir = join(work, 'export-hf-again');
    mkdirSync(dir);
    copyFileSync(join(BERT, 'vocab.txt'), join(dir, 'keep.txt'));
    const refused = await runCli(['export', BERT, dir]);
    expect(refused.code).toBe(1);
    expect(oneLineError(refused.stderr)).toContain('is not empty; choose another folder or pass --overwrite');
    expect(existsSync(join(dir, 'model.safetensors'))).toBe(false);
    const forced = await runCli(['export', BERT, dir, '--overwrite']);
    expect(forced.code).toBe(0);
    expect(readdirSync(dir)).toEqual(expect.arrayContaining(['keep.txt', 'model.safetensors']));
  });
});
