import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '../..');

describe('examples/distill.ts', () => {
  it('distils bert-tiny into a 1-layer student and the held-out loss falls clearly', () => {
    const run = spawnSync(join(ROOT, 'node_modules/.bin/tsx'), ['examples/distill.ts', '--steps', '20'], {
      cwd: ROOT,
      encoding: 'utf8',
      env: { ...process.env, TESSERA_BACKEND: 'wasm' },
      timeout: 120_000,
    });
    expect(run.status, run.stderr).toBe(0);
    const lines = run.stdout.trim().split('\n');
    expect(lines.some((l) => l.startsWith('step 20/20'))).toBe(true);
    const result = JSON.parse(lines[lines.length - 1]!) as { initialLoss: number; finalLoss: number; steps: number };
    expect(result.steps).toBe(20);
    expect(result.finalLoss).toBeLessThan(0.5 * result.initialLoss);
  });
});
