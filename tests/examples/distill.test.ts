import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '../..');

/**
 * Runs the example in a child process. Asynchronously: a minute-long spawnSync would block the
 * test worker's event loop past vitest's own RPC timeout.
 */
function runExample(args: string[], backend = 'wasm'): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(join(ROOT, 'node_modules/.bin/tsx'), ['examples/distill.ts', ...args], {
      cwd: ROOT,
      env: { ...process.env, TESSERA_BACKEND: backend },
      timeout: 300_000,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

describe('examples/distill.ts', () => {
  it('distils bert-tiny into a 1-layer student and the held-out loss falls clearly', async () => {
    const run = await runExample(['--steps', '20']);
    expect(run.status, run.stderr).toBe(0);
    const lines = run.stdout.trim().split('\n');
    expect(lines.some((l) => l.startsWith('step 20/20'))).toBe(true);
    const result = JSON.parse(lines[lines.length - 1]!) as { initialLoss: number; finalLoss: number; steps: number };
    expect(result.steps).toBe(20);
    expect(result.finalLoss).toBeLessThan(0.5 * result.initialLoss);
  });

  it('--size small distils the real-sized Llama student; on a fixed batch the loss falls, and no tensor outlives its step', async () => {
    const run = await runExample(['--size', 'small', '--steps', '3', '--batch', '1', '--length', '16', '--repeat-batch', '--lr', '3e-4']);
    expect(run.status, run.stderr).toBe(0);
    const lines = run.stdout.trim().split('\n');
    // The teacher and student are the train benchmark's sizes (12 and 4 layers, 3i + 2 map).
    expect(lines[0]).toContain('layer map [[0,2],[1,5],[2,8],[3,11]]');
    // Not a terminal: one progress line per reported step instead of a bar.
    expect(lines.some((l) => /^step 3\/3 .* tok\/s$/.test(l))).toBe(true);
    const result = JSON.parse(lines[lines.length - 1]!) as {
      size: string; student: string; backend: string; steps: number; batch: number; length: number;
      initialLoss: number; finalLoss: number; losses: number[]; tokPerSecond: number; tensorGrowth: number;
    };
    expect(result).toMatchObject({ size: 'small', student: 'llama', backend: 'wasm', steps: 3, batch: 1, length: 16 });
    expect(result.losses).toHaveLength(3);
    for (const loss of [...result.losses, result.initialLoss, result.finalLoss]) expect(Number.isFinite(loss)).toBe(true);
    // The fixed batch is also the held-out batch: step 0's loss is the initial one, and it falls.
    expect(result.losses[0]).toBeCloseTo(result.initialLoss, 4);
    expect(result.losses[2]!).toBeLessThan(result.losses[0]!);
    expect(result.finalLoss).toBeLessThan(result.initialLoss);
    expect(result.tokPerSecond).toBeGreaterThan(0);
    expect(result.tensorGrowth).toBe(0);
  }, 300_000);

  it('names the problem for options that do not fit', async () => {
    const tinyOnly = await runExample(['--student', 'mamba']);
    expect(tinyOnly.status).not.toBe(0);
    expect(tinyOnly.stderr).toContain('--student only applies to --size small');
    const typo = await runExample(['--size', 'small', '--stpes', '2']);
    expect(typo.status).not.toBe(0);
    expect(typo.stderr).toContain("unknown option '--stpes'");
    expect(typo.stderr).toContain('--steps');
    const badSize = await runExample(['--size', 'large']);
    expect(badSize.stderr).toContain('tiny, small');
    const badSteps = await runExample(['--steps', '0']);
    expect(badSteps.stderr).toContain('positive integer');
    // A text file too short for one sequence is named before any model is built.
    const dir = mkdtempSync(join(tmpdir(), 'tessera-distill-'));
    writeFileSync(join(dir, 'short.txt'), 'hi');
    const shortData = await runExample(['--size', 'small', '--data', join(dir, 'short.txt'), '--length', '16']);
    rmSync(dir, { recursive: true });
    expect(shortData.status).not.toBe(0);
    expect(shortData.stderr).toContain(`--data ${join(dir, 'short.txt')}: 2 tokens, fewer than one sequence (--length 16)`);
  });
});
