import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';

import { GenerationCache } from '../../src/generation/cache.js';
import { createContext, releaseContext } from '../../src/layers/context.js';
import { FUSED } from '../../src/kernels/contract.js';
import { canFuse } from '../../src/ops/dispatch.js';
import { MambaMixer, type MambaOptions } from '../../src/layers/mamba.js';
import { Block } from '../../src/layers/block.js';
import { RMSNorm } from '../../src/layers/norm.js';
import { addHook } from '../../src/hooks/run.js';
import { loadAddon } from '../../src/kernels/native/addon.js';
import { packWeight } from '../../src/ops/packed-weights.js';
import { built, expectClose, randoms, useNativeBackend } from './helpers.js';

const BASE: MambaOptions = { hiddenSize: 24, stateSize: 8, convKernel: 4, expand: 2, dtRank: 3, convBias: true, projBias: false };

/** A mixer whose every parameter is random (A_log and D too, so nothing hides behind init values). */
function randomMixer(options: MambaOptions, seed: number): MambaMixer {
  const mixer = new MambaMixer(options);
  mixer.namedParameters().forEach(([name, p], i) => {
    const scale = name.endsWith('A_log') ? 1 : 0.3;
    p.assign(tf.tensor(randoms(p.size, seed + i), p.shape).mul(scale));
  });
  return mixer;
}

/** Run the mixer over `chunks` (token counts) with a cache; the output of every call, and the final states. */
function run(mixer: MambaMixer, hidden: tf.Tensor3D, chunks: number[], mask?: tf.Tensor2D): { outs: Float32Array[]; conv: Float32Array; ssm: Float32Array } {
  const cache = new GenerationCache();
  const outs: Float32Array[] = [];
  let done = 0;
  for (const length of chunks) {
    const ctx = createContext({ cache, attentionMask: mask?.slice([0, 0], [mask.shape[0], done + length]) as tf.Tensor2D | undefined });
    const x = hidden.slice([0, done, 0], [hidden.shape[0], length, hidden.shape[2]]);
    const y = mixer.call(x, ctx);
    outs.push(Float32Array.from(y.dataSync()));
    releaseContext(ctx);
    tf.dispose([x, y, ctx.attentionMask]);
    done += length;
  }
  const state = cache.get(mixer)!;
  const result = { outs, conv: Float32Array.from(state.conv!.dataSync()), ssm: Float32Array.from(state.ssm!.dataSync()) };
  cache.dispose();
  return result;
}

/** The same run op by op: a hook on a tap (that changes nothing) keeps the fused kernel out. */
function runOpByOp(mixer: MambaMixer, hidden: tf.Tensor3D, chunks: number[], mask?: tf.Tensor2D) {
  let seen = 0;
  const handle = addHook(mixer, 'delta', () => void seen++);
  const result = run(mixer, hidden, chunks, mask);
  handle.remove();
  expect(seen).toBe(chunks.length); // the hook saw every call: the op-by-op path ran
  return result;
}

describe.runIf(built)('fused Mamba mixer kernel (native)', () => {
  useNativeBackend();

  it('is registered on native only', () => {
    expect(canFuse(FUSED.mambaMixer)).toBe(true);
    expect(tf.getKernel(FUSED.mambaMixer, 'wasm')).toBeUndefined();
  });

  const cases: Array<[string, MambaOptions]> = [
    ['Mamba (conv bias, no projection biases)', BASE],
    ['projection biases, no conv bias', { ...BASE, convBias: false, projBias: true }],
    ["Jamba's inner RMSNorms on dt, B and C", { ...BASE, innerNormEps: 1e-6 }],
    ['state size 16 (the decode step has a fixed-length loop for it)', { ...BASE, stateSize: 16 }],
    ['conv width 3 (the decode step has a loop of its own for width 4)', { ...BASE, convKernel: 3 }],
  ];
  for (const [name, options] of cases) {
    it(`matches the op-by-op mixer: ${name}; prompt, then single steps, batch 2`, () => {
      const mixer = randomMixer(options, 11);
      const hidden = tf.tensor3d(randoms(2 * 9 * 24, 5), [2, 9, 24]);
      const chunks = [5, 1, 1, 2];
      const fused = run(mixer, hidden, chunks);
      const reference = runOpByOp(mixer, hidden, chunks);
      fused.outs.forEach((out, i) => expectClose(out, reference.outs[i]!, 1e-5, 1e-4));
      expectClose(fused.conv, reference.conv, 1e-5, 1e-5);
      expectClose(fused.ssm, reference.ssm, 1e-5, 1e-4);
      hidden.dispose();
      mixer.dispose();
    });
  }

  // One sequence's one-token calls take mamba.c's three-pass step. Hidden size 520 (1040 channels)
  // splits both its channel passes over two threads; 24 keeps each in one part.
  const stepCases: Array<[string, MambaOptions]> = [
    ...cases.map(([name, options]): [string, MambaOptions] => [name, options]),
    ['1040 channels, state size 16 (every pass split over the threads)', { ...BASE, hiddenSize: 520, stateSize: 16, dtRank: 33 }],
  ];
  for (const [name, options] of stepCases) {
    it(`takes one sequence's decode steps in three passes, equal to the general path bit for bit: ${name}; float32, bfloat16, int8`, () => {
      const addon = loadAddon();
      const size = options.hiddenSize;
      const hidden = tf.tensor3d(randoms(8 * size, 7), [1, 8, size]);
      // A first token from an empty state (no conv window), a prompt, then single steps.
      const chunks = [1, 3, 1, 1, 1, 1];
      for (const dtype of ['float32', 'bfloat16', 'int8'] as const) {
        const mixer = randomMixer(options, 31);
        if (dtype !== 'float32') {
          for (const w of [mixer.inProj.weight, mixer.outProj.weight, mixer.xProj.weight, mixer.dtProj.weight]) packWeight(w, dtype);
        }
        const threePass = run(mixer, hidden, chunks);
        addon.mambaFusedStepForceAbsent(true);
        let general: ReturnType<typeof run>;
        try {
          general = run(mixer, hidden, chunks);
        } finally {
          addon.mambaFusedStepForceAbsent(false);
        }
        expect(threePass.outs).toEqual(general.outs);
        expect(threePass.conv).toEqual(general.conv);
        expect(threePass.ssm).toEqual(general.ssm);
        if (dtype === 'float32') {
          const reference = runOpByOp(mixer, hidden, chunks);
          // Summation order differs from the op-by-op path's: within float32 rounding of the output's scale.
          const scaled = (expected: Float32Array) => 1e-5 * Math.max(1, ...expected.map(Math.abs));
          threePass.outs.forEach((out, i) => expectClose(out, reference.outs[i]!, scaled(reference.outs[i]!), 1e-4));
          expectClose(threePass.ssm, reference.ssm, scaled(reference.ssm), 1e-4);
        }
        mixer.dispose();
      }
      hidden.dispose();
    });
  }

  it('leaves the state untouched for padding: left-padded prompt and padded single steps', () => {
    const mixer = randomMixer(BASE, 3);
    const hidden = tf.tensor3d(randoms(2 * 8 * 24, 9), [2, 8, 24]);
    // Row 1 is left-padded by 3, then has a padded decode step (position 6) between real ones.
    const mask = tf.tensor2d([[1, 1, 1, 1, 1, 1, 1, 1], [0, 0, 0, 1, 1, 1, 0, 1]], [2, 8], 'int32');
    const chunks = [6, 1, 1];
    const fused = run(mixer, hidden, chunks, mask);
    const reference = runOpByOp(mixer, hidden, chunks, mask);
    fused.outs.forEach((out, i) => expectClose(out, reference.outs[i]!, 1e-5, 1e-4));
    expectClose(fused.conv, reference.conv, 1e-5, 1e-5);
    expectClose(fused.ssm, reference.ssm, 1e-5, 1e-4);
    tf.dispose([hidden, mask]);
    mixer.dispose();
  });

  it('runs a whole pre-norm Mamba block (norm, mixer, residual) as one kernel, equal to its steps', async () => {
    const block = new Block({ mixerNorm: new RMSNorm(24, 1e-5), mixer: randomMixer(BASE, 21), placement: 'pre' });
    block.mixerNorm.namedParameters().forEach(([, p]) => p.assign(tf.tensor(randoms(p.size, 8), p.shape).add(1)));
    const hidden = tf.tensor3d(randoms(2 * 6 * 24, 13), [2, 6, 24]);
    const forward = (): tf.Tensor => {
      const cache = new GenerationCache();
      const ctx = createContext({ cache });
      const first = block.call(hidden.slice([0, 0, 0], [2, 5, 24]), ctx);
      const step = block.call(hidden.slice([0, 5, 0], [2, 1, 24]), createContext({ cache }));
      const out = tf.concat([first, step], 1);
      cache.dispose();
      return out;
    };
    tf.tidy(() => block.call(hidden, createContext())); // A = -exp(A_log) is derived on first use
    const profile = await tf.profile(() => tf.tidy(() => block.call(hidden, createContext())));
    expect(profile.kernels.map((k) => k.name)).toEqual(['TesseraMambaMixer']);
    (profile.result as tf.Tensor).dispose();
    const fused = tf.tidy(forward);
    // A hook on the norm keeps the block in steps (norm kernel, mixer kernel, add).
    const handle = block.mixerNorm.attachHook('', 'post', () => undefined);
    const steps = tf.tidy(forward);
    handle.remove();
    expectClose(fused.dataSync(), steps.dataSync(), 1e-5, 1e-4);
    tf.dispose([fused, steps, hidden]);
    block.dispose();
  });

  it('does not leak tensors across repeated calls', () => {
    const mixer = randomMixer(BASE, 4);
    const hidden = tf.tensor3d(randoms(1 * 6 * 24, 2), [1, 6, 24]);
    run(mixer, hidden, [4, 1, 1]);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) run(mixer, hidden, [4, 1, 1]);
    expect(tf.memory().numTensors).toBe(before);
    hidden.dispose();
    mixer.dispose();
  });

  it('rejects operands of the wrong shape, naming them', () => {
    const mixer = randomMixer(BASE, 5);
    const hidden = tf.zeros([1, 2, 24]);
    const inputs = (over: tf.NamedTensorMap) => ({
      hidden, inWeight: mixer.inProj.weight, convWeight: mixer.convWeight, convBias: mixer.convBias!, xWeight: mixer.xProj.weight,
      dtWeight: mixer.dtProj.weight, dtBias: mixer.dtProj.bias!, A: mixer.A_log, D: mixer.D, outWeight: mixer.outProj.weight, ...over,
    });
    const wrongState = tf.zeros([1, 48, 3]);
    expect(() => tf.engine().runKernel(FUSED.mambaMixer, inputs({ convState: wrongState }), {})).toThrow(/input 'convState' must have shape \[1,48,4\], got \[1,48,3\]/);
    const wrongD = tf.zeros([47]);
    expect(() => tf.engine().runKernel(FUSED.mambaMixer, inputs({ D: wrongD }), {})).toThrow(/input 'D' must have shape \[48\]/);
    tf.dispose([hidden, wrongState, wrongD]);
    mixer.dispose();
  });
});
