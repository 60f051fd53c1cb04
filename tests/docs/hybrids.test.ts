import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { main as llamaToHybrid } from '../../examples/llama-to-hybrid.js';

const ROOT = join(import.meta.dirname, '../..');
const doc = await readFile(join(ROOT, 'docs/hybrids.md'), 'utf8');
const blocks = [...doc.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!);
const work = await mkdtemp(join(tmpdir(), 'tessera-docs-'));
afterAll(() => rm(work, { recursive: true, force: true }));

type Check = (expected: string, ...args: unknown[]) => void;
const show = (v: unknown): string => (typeof v === 'string' ? v : JSON.stringify(v));
const squash = (s: string): string => s.replace(/'/g, '"').replace(/\s+/g, '');

/**
 * A doc block as a module ('tessera' resolves to the sources through the vitest alias), where
 * `console.log(x); // y` checks that x prints as y and a failed console.assert throws.
 * tests/docs.test.ts runs every doc block too; this adds the printed-value and leak checks.
 */
function runnable(code: string): string {
  return code
    .replace(/^(\s*)console\.log\((.*)\);\s*\/\/\s*(.*)$/gm, (_m, indent: string, args: string, want: string) => `${indent}(globalThis as any).__docCheck(${JSON.stringify(want)}, ${args});`)
    .replace(/console\.assert\(/g, '(globalThis as any).__docAssert(');
}

describe('docs/hybrids.md', () => {
  it('has runnable examples', () => {
    expect(blocks.length).toBeGreaterThanOrEqual(4);
  });

  blocks.forEach((code, i) => {
    it(`example ${i + 1} runs, prints what the page says, and leaks no tensors`, async () => {
      const checks: [string, string][] = [];
      (globalThis as { __docCheck?: Check }).__docCheck = (want, ...args) => checks.push([want, args.map(show).join(' ')]);
      (globalThis as { __docAssert?: (ok: unknown, msg?: string) => void }).__docAssert = (ok, msg) => {
        if (!ok) throw new Error(`console.assert failed in example ${i + 1}: ${msg ?? ''}`);
      };
      const file = join(work, `example-${i + 1}.ts`);
      await writeFile(file, runnable(code));
      const before = tf.memory().numTensors;
      await import(/* @vite-ignore */ pathToFileURL(file).href);
      expect(tf.memory().numTensors).toBe(before);
      for (const [want, got] of checks) expect(squash(got)).toBe(squash(want));
    });
  });
});

describe('examples/llama-to-hybrid.ts', () => {
  it('keeps layer 0 exact, makes layer 1 a fresh Mamba mixer, and reloads identically', async () => {
    const out = await mkdtemp(join(tmpdir(), 'tessera-example-'));
    try {
      const result = await llamaToHybrid(undefined, out);
      expect(result.layer0Diff).toBe(0);
      expect(result.reloadedSame).toBe(true);
      expect(result.fresh.length).toBeGreaterThan(0);
      expect(result.fresh.every((p) => p.startsWith('layers.1.mixer.'))).toBe(true);
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  });
});
