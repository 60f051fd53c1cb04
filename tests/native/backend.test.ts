import * as tf from '@tensorflow/tfjs-core';
import { availableParallelism } from 'node:os';
import { beforeAll, describe, expect, it } from 'vitest';

import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { loadAddon, OPENBLAS_THREAD_TIMEOUT } from '../../src/kernels/native/addon.js';
import { FUSED } from '../../src/kernels/contract.js';
import {
  getNumThreads,
  nativeInfo,
  setNumThreads,
} from '../../src/kernels/native/index.js';
import { built, expectClose, randoms, runOn, selectNativeOrExpectClearError } from './helpers.js';

describe('native backend', () => {
  it('is selectable, or fails with a build hint where the addon is not built', async () => {
    await selectNativeOrExpectClearError();
  });

  it('names the missing addon file and how to build it', () => {
    expect(() => loadAddon('/nonexistent/tessera_native.node')).toThrow(
      "native backend is not built: /nonexistent/tessera_native.node is missing; install OpenBLAS (sudo bash scripts/install-native-deps.sh) and run 'npm run build:native'",
    );
  });

  describe.runIf(built)('when built', () => {
    beforeAll(async () => {
      await tf.setBackend('native');
    });

    it('replaces the hot kernels and copies every other cpu kernel', () => {
      for (const name of [tf.BatchMatMul, tf._FusedMatMul, tf.Softmax, tf.GatherV2, tf.UnsortedSegmentSum]) {
        expect(tf.getKernel(name, 'native')?.kernelFunc).not.toBe(tf.getKernel(name, 'cpu')?.kernelFunc);
      }
      const cpu = tf.getKernelsForBackend('cpu').map((k) => k.kernelName);
      const native = new Set(tf.getKernelsForBackend('native').map((k) => k.kernelName));
      expect(cpu.filter((name) => !native.has(name))).toEqual([]);
      for (const name of [FUSED.selectiveScan, FUSED.rmsNorm, FUSED.layerNorm]) expect(native.has(name)).toBe(true);
    });

    it('sums segments (the gradient of gather) as the cpu kernel does, repeated and out-of-range ids included', async () => {
      const x = randoms(6 * 5, 4);
      const cases = [
        () => tf.unsortedSegmentSum(tf.tensor(x, [6, 5]), tf.tensor1d([3, 0, 3, 7, 1, 3], 'int32'), 5),
        () => tf.unsortedSegmentSum(tf.tensor(x, [30]), tf.tensor1d(Array.from({ length: 30 }, (_, i) => i % 4), 'int32'), 4),
        // An embedding-sized gradient, its output rows split over the threads; a negative id dropped.
        () => tf.unsortedSegmentSum(tf.tensor(randoms(600 * 256, 5), [600, 256]), tf.tensor1d(Array.from({ length: 600 }, (_, i) => (i === 7 ? -1 : (i * 7919) % 2000)), 'int32'), 2000),
      ];
      for (const f of cases) {
        const native = await runOn('native', f);
        const cpu = await runOn('cpu', f);
        expect(native.shape).toEqual(cpu.shape);
        expectClose(native.values, cpu.values, 1e-6, 1e-6);
      }
      await tf.setBackend('native');
    });

    it('runs cpu kernels it does not override (concat, slice, pad) with cpu results', async () => {
      const x = randoms(4 * 9, 3);
      const f = (): tf.Tensor =>
        tf.concat([tf.pad(tf.tensor(x, [4, 9]), [[0, 0], [1, 0]]), tf.slice(tf.tensor(x, [4, 9]), [0, 2], [4, 3])], 1);
      const native = await runOn('native', f);
      const cpu = await runOn('cpu', f);
      expectClose(native.values, cpu.values, 0, 0);
    });

    it('accepts float32 tensors cast from int32 or bool (the cpu Cast relabels their data)', async () => {
      const f = (): tf.Tensor => {
        const ints = tf.cast(tf.tensor2d([[1, 2], [3, 4]], undefined, 'int32'), 'float32');
        const bools = tf.cast(tf.tensor2d([[true, false], [false, true]], undefined, 'bool'), 'float32');
        const rms = tf.engine().runKernel(FUSED.rmsNorm, { x: ints }, {}) as tf.Tensor;
        return tf.concat([tf.matMul(ints, bools), tf.add(ints, bools), tf.softmax(ints), tf.exp(bools), rms]);
      };
      const native = await runOn('native', f);
      await tf.setBackend('native');
      const expected = tf.tidy(() => {
        const ints = tf.tensor2d([[1, 2], [3, 4]]);
        const bools = tf.tensor2d([[1, 0], [0, 1]]);
        const rms = tf.engine().runKernel(FUSED.rmsNorm, { x: ints }, {}) as tf.Tensor;
        return tf.concat([tf.matMul(ints, bools), tf.add(ints, bools), tf.softmax(ints), tf.exp(bools), rms]);
      });
      expectClose(native.values, expected.dataSync(), 1e-6);
      expected.dispose();
    });

    it('uses every core for BLAS by default, and setNumThreads changes it', () => {
      const expected = process.env.TESSERA_NUM_THREADS ? Number(process.env.TESSERA_NUM_THREADS) : availableParallelism();
      expect(getNumThreads()).toBe(expected);
      setNumThreads(1);
      expect(nativeInfo().numThreads).toBe(1);
      setNumThreads(expected);
      expect(getNumThreads()).toBe(expected);
      expect(() => setNumThreads(0)).toThrow(/positive integer/);
      expect(nativeInfo().coreName.length).toBeGreaterThan(0);
    });

    it('leaves tensor and backend data counts flat across repeated calls', async () => {
      await tf.setBackend('native');
      const backend = tf.backend() as unknown as { numDataIds(): number };
      const t = (shape: number[], seed: number): tf.Tensor => tf.tensor(randoms(tf.util.sizeFromShape(shape), seed), shape);
      const a = t([2, 3, 8], 1);
      const b = t([8, 5], 2);
      const bias = t([5], 3);
      const rowBias = t([3, 1], 4);
      const w = t([8], 5);
      const scan = { u: t([1, 4, 3], 6), delta: t([1, 4, 3], 7), A: t([3, 2], 8), B: t([1, 4, 2], 9), C: t([1, 4, 2], 10), D: t([3], 11) };
      const ints = tf.tensor2d([[1, 2]], undefined, 'int32');
      const odd = tf.ones([2, 1, 2, 1, 2, 1, 2, 1, 2]);
      const even = tf.ones([1, 2, 1, 2, 1, 2, 1, 2, 1]);
      const round = (): void => {
        const outs = [
          tf.matMul(a, b),
          tf.matMul(a, a, false, true),
          tf.fused.matMul({ a, b, bias, activation: 'relu' }),
          tf.fused.matMul({ a, b, bias: rowBias, activation: 'elu' }),
          tf.matMul(ints, ints, false, true),
          tf.engine().runKernel(FUSED.rmsNorm, { x: a, weight: w }, {}) as tf.Tensor,
          tf.engine().runKernel(FUSED.layerNorm, { x: a, gamma: w, beta: w }, {}) as tf.Tensor,
          ...(tf.engine().runKernel(FUSED.selectiveScan, scan, {}) as tf.Tensor[]),
          tf.softmax(a),
          tf.add(a, w),
          tf.transpose(a, [1, 0, 2]),
          tf.mean(a, [0, 2], true),
          tf.erf(a),
          tf.gather(a, [1, 0], 1),
          // Rank 9 after collapsing: the cpu fallback inside a native kernel.
          tf.add(odd, even),
        ];
        for (const o of outs) o.dataSync();
        tf.dispose(outs);
      };
      round();
      const tensors = tf.memory().numTensors;
      const dataIds = backend.numDataIds();
      for (let i = 0; i < 5; i++) round();
      expect(tf.memory().numTensors).toBe(tensors);
      expect(backend.numDataIds()).toBe(dataIds);
      tf.dispose([a, b, bias, rowBias, w, ints, odd, even, ...Object.values(scan)]);
    });
  });

  it.runIf(built)('loading the addon sets OPENBLAS_THREAD_TIMEOUT for OpenBLAS to read, unless the user chose one', () => {
    const timeoutAfterLoad = (value: string | undefined) => {
      const env = { ...process.env };
      delete env.OPENBLAS_THREAD_TIMEOUT;
      if (value !== undefined) env.OPENBLAS_THREAD_TIMEOUT = value;
      const code = "const { loadAddon } = await import('./src/kernels/native/addon.js'); loadAddon(); console.log(process.env.OPENBLAS_THREAD_TIMEOUT)";
      const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
        cwd: fileURLToPath(new URL('../..', import.meta.url)),
        encoding: 'utf8',
        env,
        timeout: 60_000,
      });
      return child.stdout.trim();
    };
    expect(timeoutAfterLoad(undefined)).toBe(OPENBLAS_THREAD_TIMEOUT);
    expect(timeoutAfterLoad('10')).toBe('10');
  }, 120_000);
});
