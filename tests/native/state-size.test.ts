import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';

import { GenerationCache } from '../../src/generation/cache.js';
import { Block } from '../../src/layers/block.js';
import { createContext, releaseContext } from '../../src/layers/context.js';
import { selectiveScan } from '../../src/ops/selective-scan.js';
import { canFuse, runFused } from '../../src/ops/dispatch.js';
import { MambaMixer, type MambaOptions } from '../../src/layers/mamba.js';
import { RMSNorm } from '../../src/layers/norm.js';
import { sequentialScan } from '../../src/ops/scan-reference.js';
import { FUSED } from '../../src/kernels/contract.js';
import { built, expectClose, randoms, useNativeBackend } from './helpers.js';

// The native scan kernels hold a channel's state in a fixed array of 256 (native/src/scan.c). A
// larger state size must not surface as an error where cpu and wasm give a result: the layers
// then take the reference path.
const N = 300;
const OPTIONS: MambaOptions = { hiddenSize: 16, stateSize: N, convKernel: 4, expand: 2, dtRank: 3, convBias: true, projBias: false };

function randomMixer(options: MambaOptions, seed: number): MambaMixer {
  const mixer = new MambaMixer(options);
  mixer.namedParameters().forEach(([name, p], i) => {
    p.assign(tf.tensor(randoms(p.size, seed + i), p.shape).mul(name.endsWith('A_log') ? 1 : 0.3));
  });
  return mixer;
}

/** A pre-norm block over `mixer`: a prompt of 5 tokens, then two single steps, with a cache. */
function runBlock(block: Block, hidden: tf.Tensor3D): Float32Array {
  const cache = new GenerationCache();
  const outs = tf.tidy(() => {
    const parts = [[0, 5], [5, 1], [6, 1]].map(([start, length]) => {
      const ctx = createContext({ cache });
      const out = block.call(hidden.slice([0, start!, 0], [hidden.shape[0], length!, hidden.shape[2]]), ctx);
      releaseContext(ctx); // what the model classes do after each call
      return out;
    });
    return tf.concat(parts, 1);
  });
  const ssm = cache.get(block.mixer)!.ssm!;
  expect(ssm.shape).toEqual([hidden.shape[0], OPTIONS.expand * OPTIONS.hiddenSize, N]);
  const values = Float32Array.from(outs.dataSync());
  outs.dispose();
  cache.dispose();
  return values;
}

describe.runIf(built)(`native backend, Mamba state size ${N} (above the fused kernels' 256)`, () => {
  useNativeBackend();

  it('the kernels themselves still refuse it when called directly (their safety check)', () => {
    const t = (shape: number[]): tf.Tensor => tf.zeros(shape);
    const scanInputs = { u: t([1, 2, 3]), delta: t([1, 2, 3]), A: t([3, N]), B: t([1, 2, N]), C: t([1, 2, N]), D: t([3]) };
    expect(() => tf.engine().runKernel(FUSED.selectiveScan, scanInputs, {})).toThrow('selective scan: state size above 256');
    tf.dispose(Object.values(scanInputs));
    const mixer = randomMixer(OPTIONS, 1);
    const hidden = tf.zeros([1, 2, OPTIONS.hiddenSize]);
    const { innerNorms: _none, ...weights } = mixer.mixerWeights();
    expect(() => runFused(FUSED.mambaMixer, { hidden, ...weights })).toThrow(/state size above 256/);
    tf.dispose(hidden);
    mixer.dispose();
  });

  it('the layers do not choose the fused kernels for it, and do for Mamba\'s usual 16', () => {
    expect(tf.getKernel(FUSED.mambaMixer, 'native')).toBeDefined();
    expect(canFuse(FUSED.mambaMixer, { stateSize: 16 })).toBe(true);
    expect(canFuse(FUSED.mambaMixer, { stateSize: 256 })).toBe(true);
    expect(canFuse(FUSED.mambaMixer, { stateSize: N })).toBe(false);
  });

  it('the default scan equals the sequential reference to 1e-4 (prompt and single step, from a state)', () => {
    const [b, l, d] = [2, 7, 5];
    const inputs = {
      u: tf.tensor3d(randoms(b * l * d, 1), [b, l, d]),
      delta: tf.tensor3d(randoms(b * l * d, 2), [b, l, d]).abs() as tf.Tensor3D,
      A: tf.tensor2d(randoms(d * N, 3), [d, N]).abs().neg() as tf.Tensor2D,
      B: tf.tensor3d(randoms(b * l * N, 4), [b, l, N]),
      C: tf.tensor3d(randoms(b * l * N, 5), [b, l, N]),
      D: tf.tensor1d(randoms(d, 6)),
      h0: tf.tensor3d(randoms(b * d * N, 7), [b, d, N]),
    };
    const before = tf.memory().numTensors;
    for (const length of [l, 1]) {
      const sliced = { ...inputs, u: inputs.u.slice(0, [b, length, d]), delta: inputs.delta.slice(0, [b, length, d]), B: inputs.B.slice(0, [b, length, N]), C: inputs.C.slice(0, [b, length, N]) };
      const fast = selectiveScan(sliced);
      const reference = sequentialScan(sliced);
      expectClose(fast.y.dataSync(), reference.y.dataSync(), 1e-4, 1e-4);
      expectClose(fast.h.dataSync(), reference.h.dataSync(), 1e-4, 1e-4);
      tf.dispose([fast.y, fast.h, reference.y, reference.h, sliced.u, sliced.delta, sliced.B, sliced.C]);
    }
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose(Object.values(inputs));
  });

  it('a pre-norm Mamba block (prompt, then decode steps) gives the reference result instead of an error', () => {
    const block = new Block({ mixerNorm: new RMSNorm(OPTIONS.hiddenSize, 1e-5), mixer: randomMixer(OPTIONS, 11), placement: 'pre' });
    const hidden = tf.tensor3d(randoms(2 * 7 * OPTIONS.hiddenSize, 13), [2, 7, OPTIONS.hiddenSize]);
    const dispatched = runBlock(block, hidden);
    const before = tf.memory().numTensors;
    runBlock(block, hidden);
    expect(tf.memory().numTensors).toBe(before);
    (block.mixer as MambaMixer).scan = sequentialScan; // the reference: op by op, sequential scan
    const reference = runBlock(block, hidden);
    expect(reference.some((v) => v !== 0)).toBe(true);
    expectClose(dispatched, reference, 1e-4, 1e-4);
    hidden.dispose();
    block.dispose();
  });
});
