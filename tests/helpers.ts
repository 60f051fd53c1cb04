import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'vitest';

export const FIXTURES = join(import.meta.dirname, 'fixtures');
export const fixture = (name: string): string => join(FIXTURES, name);

/** A fixture's expected.json (inputs and the outputs HF PyTorch computed). */
export interface Expected {
  input_ids: number[][];
  attention_mask?: number[][];
  token_type_ids?: number[][];
  last_hidden_state: number[][][];
  hidden_states: number[][][][];
  pooler_output?: number[][];
  logits?: number[][][];
  greedy_prompt_ids?: number[];
  greedy_ids?: number[];
  text?: string[];
  text_pair?: (string | null)[];
  meta: Record<string, unknown>;
}

export function loadExpected(name: string): Expected {
  return JSON.parse(readFileSync(join(FIXTURES, name, 'expected.json'), 'utf8')) as Expected;
}

export function ids(rows: number[][]): tf.Tensor2D {
  return tf.tensor2d(rows, undefined, 'int32');
}

/**
 * Largest |actual - expected| over [B, L, ...] values, counting only positions whose mask is 1
 * (padding outputs depend on the masking constant, which HF and Tessera choose differently).
 */
export function maxAbsDiff(actual: tf.Tensor, expected: unknown, mask?: number[][]): number {
  const a = actual.arraySync();
  let worst = 0;
  const walk = (x: unknown, y: unknown, path: number[]): void => {
    if (typeof x === 'number') {
      if (mask !== undefined && path.length >= 2 && mask[path[0]!]![path[1]!] === 0) return;
      const d = Math.abs(x - (y as number));
      if (!(d <= worst)) worst = Number.isNaN(d) ? Infinity : d;
      return;
    }
    const xs = x as unknown[];
    const ys = y as unknown[];
    if (!Array.isArray(ys) || xs.length !== ys.length) throw new Error(`shape mismatch at [${path}]: ${xs.length} vs ${Array.isArray(ys) ? ys.length : typeof ys}`);
    xs.forEach((v, i) => walk(v, ys[i], [...path, i]));
  };
  walk(a, expected, []);
  return worst;
}

/** `fn` throws (or rejects with) exactly `message`, as an instance of `type`, and leaves no tensor behind. */
export async function expectThrowsFlat(fn: () => unknown, type: new (...args: never[]) => Error, message: string): Promise<void> {
  const before = tf.memory().numTensors;
  let caught: unknown;
  try {
    await fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(type);
  expect((caught as Error).message).toBe(message);
  expect(tf.memory().numTensors).toBe(before);
}
