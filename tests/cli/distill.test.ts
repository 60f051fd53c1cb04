// `tessera distill CONFIG.json` through the binary, on the tiny fixtures.
import { beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { AutoEncoder, loadFeatureExtractionPipeline } from '../../src/index.js';
import { oneLineError, runCli } from './run-cli.js';

const FIX = join(import.meta.dirname, '..', 'fixtures');
const BERT = join(FIX, 'bert-tiny');
let work: string;

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'tessera-cli-distill-'));
  // Sentences of whole words from the teacher's vocabulary, so that no line is all [UNK].
  const words = readFileSync(join(BERT, 'vocab.txt'), 'utf8').split('\n').filter((w) => /^[a-z]{3,}$/.test(w));
  const lines = Array.from({ length: 12 }, (_, i) => Array.from({ length: 4 + (i % 6) }, (_, j) => words[(i * 7 + j * 13) % words.length]).join(' '));
  writeFileSync(join(work, 'lines.txt'), `${lines.join('\n')}\n\n`);
});

function writeConfig(name: string, config: Record<string, unknown>): string {
  const path = join(work, name);
  writeFileSync(path, JSON.stringify(config));
  return path;
}

describe('tessera distill', () => {
  it('trains a fresh student from a config, reports progress and a JSON summary, and saves it', async () => {
    const teacherConfig = JSON.parse(readFileSync(join(BERT, 'config.json'), 'utf8'));
    const config = writeConfig('run.json', {
      teacher: BERT,
      student: { ...teacherConfig, num_hidden_layers: 1 },
      data: 'lines.txt', // relative to the config file
      steps: 6,
      batchSize: 4,
      learningRate: 0.01,
      maxLength: 16,
      losses: { hidden: { loss: 'mse' }, attention: { point: 'scores', weight: 0.1 } },
      seed: 3,
      output: 'student',
    });
    const run = await runCli(['distill', config]);
    expect(run.code).toBe(0);
    expect(run.tensorsLeft).toBe(0);
    // stderr is a pipe here: plain progress lines, first and last step.
    expect(run.stderr).toMatch(/^distill step 1\/6 loss \d+\.\d{4}$/m);
    expect(run.stderr).toMatch(/^distill step 6\/6 loss \d+\.\d{4}$/m);
    const last = run.stdout.trim().split('\n').at(-1)!;
    const summary = JSON.parse(last);
    expect(summary.steps).toBe(6);
    expect(summary.saved).toBe(join(work, 'student'));
    expect(Number.isFinite(summary.initialLoss) && Number.isFinite(summary.finalLoss)).toBe(true);
    expect(summary.finalLoss).toBeLessThan(summary.initialLoss);
    expect(summary.tokensPerSecond).toBeGreaterThan(0);

    // The saved student is a 1-layer BERT that loads back and runs.
    const student = await AutoEncoder.fromDir(summary.saved);
    expect(student.layers.length).toBe(1);
    const ids = tf.tensor2d([[2, 40, 41, 3]], undefined, 'int32');
    const out = student.forward(ids);
    expect(out.lastHiddenState.shape).toEqual([1, 4, teacherConfig.hidden_size]);
    tf.dispose([ids, out.lastHiddenState, ...out.allOutputs, ...(out.pooledOutput ? [out.pooledOutput] : [])]);
    student.dispose();
    expect(tf.memory().numTensors).toBe(0);
  });

  it('saves an HF-format student with the tokenizer it was trained with, loadable as a pipeline', async () => {
    const teacherConfig = JSON.parse(readFileSync(join(BERT, 'config.json'), 'utf8'));
    const config = writeConfig('run-hf.json', {
      teacher: BERT,
      student: { ...teacherConfig, num_hidden_layers: 1 },
      data: 'lines.txt',
      steps: 1,
      batchSize: 2,
      maxLength: 8,
      output: 'student-hf',
      format: 'hf',
    });
    const run = await runCli(['distill', config]);
    expect(run.code).toBe(0);
    const saved = join(work, 'student-hf');
    for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'vocab.txt']) expect(existsSync(join(saved, f))).toBe(true);
    expect(readFileSync(join(saved, 'vocab.txt'))).toEqual(readFileSync(join(BERT, 'vocab.txt')));
    const extract = await loadFeatureExtractionPipeline(saved);
    const [vector] = await extract(['hello world']);
    expect(vector).toHaveLength(teacherConfig.hidden_size);
    extract.dispose();
    expect(tf.memory().numTensors).toBe(0);
  });

  it('rejects an unknown key (naming the nearest), bad values and a missing data file, training nothing', async () => {
    const base = { teacher: BERT, student: BERT, data: 'lines.txt', steps: 2, output: 'never' };
    const runs = await Promise.all([
      runCli(['distill', writeConfig('typo.json', { ...base, learningRat: 0.1 })]),
      runCli(['distill', writeConfig('loss-typo.json', { ...base, losses: { hiden: {} } })]),
      runCli(['distill', writeConfig('steps.json', { ...base, steps: 0 })]),
      runCli(['distill', writeConfig('nodata.json', { ...base, data: 'missing.txt' })]),
      runCli(['distill', join(work, 'absent.json')]),
      runCli(['distill', writeConfig('hf-over.json', { ...base, output: '.', format: 'hf' })]),
    ]);
    const lines = runs.map((r) => {
      expect(r.code).toBe(1);
      expect(r.tensorsLeft).toBe(0);
      return oneLineError(r.stderr);
    });
    expect(lines[0]).toContain("unknown key 'learningRat'; did you mean 'learningRate'?");
    expect(lines[1]).toContain("losses: unknown key 'hiden'; did you mean 'hidden'?");
    expect(lines[2]).toContain("'steps' must be a positive integer, got 0");
    expect(lines[3]).toMatch(/data file .*missing\.txt: no such file/);
    expect(lines[4]).toMatch(/absent\.json: no such file/);
    expect(lines[5]).toContain('is not empty; HF output needs an empty or new folder');
    expect(existsSync(join(work, 'never'))).toBe(false);
  });
});
