// The chained tensor methods Tessera installs (src/tf-chained.ts) are exactly those tfjs-core
// declares in its typings and assigns in its own chained_ops modules, and behave as tfjs's own.
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import '../../src/index.js';
import { CHAINED_METHODS } from '../../src/tf-chained.js';

const chainedDir = join(dirname(createRequire(import.meta.url).resolve('@tensorflow/tfjs-core/package.json')), 'dist', 'public', 'chained_ops');
const sources = readdirSync(chainedDir).filter((f) => !f.includes('register_all'));

/** Method names tfjs-core assigns to the Tensor prototype in its chained_ops/*.js. */
const assigned = sources.filter((f) => f.endsWith('.js')).flatMap((f) => [...readFileSync(join(chainedDir, f), 'utf8').matchAll(/prototype\.(\w+)\s*=/g)].map((m) => m[1]!));
/** Method names its chained_ops/*.d.ts declare on `interface Tensor`. */
const declared = sources
  .filter((f) => f.endsWith('.d.ts'))
  .flatMap((f) => [...readFileSync(join(chainedDir, f), 'utf8').matchAll(/^\s+(\w+)\s*(?:<[^(]*>)?\(/gm)].map((m) => m[1]!));

const proto = tf.Tensor.prototype as unknown as Record<string, unknown>;
const sorted = (names: Iterable<string>): string[] => [...new Set(names)].sort();

describe('chained tensor methods', () => {
  it('Tessera installs every method tfjs-core declares and assigns, and no other', () => {
    expect(assigned.length).toBeGreaterThan(100);
    expect(sorted(CHAINED_METHODS)).toEqual(sorted(assigned));
    expect(sorted(declared)).toEqual(sorted(assigned));
    for (const name of declared) expect(typeof proto[name], name).toBe('function');
  });

  it('the methods whose body is not a plain call give what tfjs-core writes them as', () => {
    const before = tf.memory().numTensors;
    tf.tidy(() => {
      const x = tf.tensor2d([[1, -2, 3], [-4, 5, -6]]);
      const y = tf.tensor2d([[10, 20, 30], [40, 50, 60]]);
      const cond = tf.tensor2d([[1, 0, 1], [0, 1, 0]], undefined, 'bool');
      const same = (a: tf.Tensor, b: tf.Tensor): void => {
        expect(a.shape).toEqual(b.shape);
        expect(a.dtype).toBe(b.dtype);
        expect(a.arraySync()).toEqual(b.arraySync());
      };
      // `this` is a value of the where, not its condition.
      same(x.where(cond, y), tf.where(cond, x, y));
      same(x.concat(y, 1), tf.concat([x, y], 1));
      same(x.concat([y, x]), tf.concat([x, y, x]));
      same(x.stack(y), tf.stack([x, y]));
      same(x.stack([y, x], 1), tf.stack([x, y, x], 1));
      same(x.flatten(), tf.reshape(x, [6]));
      same(x.as1D(), tf.reshape(x, [6]));
      same(x.as3D(3, 2, 1), tf.reshape(x, [3, 2, 1]));
      same(x.reshapeAs(tf.zeros([3, 2])), tf.reshape(x, [3, 2]));
      same(x.toInt(), tf.cast(x, 'int32'));
      same(x.toBool(), tf.cast(x, 'bool'));
      same(x.asType('int32').toFloat(), tf.cast(tf.cast(x, 'int32'), 'float32'));
      same(tf.tensor1d([7]).asScalar(), tf.scalar(7));
      expect(() => x.asScalar()).toThrow('The array must have only 1 element.');
      // Plain calls, including ones under tf.image and ones with defaults.
      same(x.slice([0, 1], [2, 2]).add(1).sub(x.slice([0, 0], [2, 2])), tf.sub(tf.add(tf.slice(x, [0, 1], [2, 2]), 1), tf.slice(x, [0, 0], [2, 2])));
      same(tf.tensor1d([0, 2], 'int32').oneHot(3, 1, 0), tf.oneHot(tf.tensor1d([0, 2], 'int32'), 3));
      const image: tf.Tensor4D = tf.tensor4d([1, 2, 3, 4], [1, 2, 2, 1]);
      same(image.resizeBilinear([4, 4]), tf.image.resizeBilinear(image, [4, 4]));
    });
    expect(tf.memory().numTensors).toBe(before);
  });

  it('a disposed tensor is refused by name, as by tfjs own methods', () => {
    const before = tf.memory().numTensors;
    const x = tf.ones([2]);
    const cond = tf.ones([2], 'bool');
    x.dispose();
    expect(() => x.add(1)).toThrow('Tensor is disposed.');
    expect(() => x.where(cond, x)).toThrow('Tensor is disposed.');
    cond.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});
