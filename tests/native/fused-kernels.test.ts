import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';

import { FUSED } from '../../src/kernels/contract.js';
import {
  getNumThreads,
  layerNorm,
  rmsNorm,
  selectiveScan,
  setNumThreads,
  type SelectiveScanArrays,
} from '../../src/kernels/native/index.js';
import { built, expectClose, randoms, selectNativeOrExpectClearError } from './helpers.js';

type ScanCase = SelectiveScanArrays;

/** The paper's recurrence, one step at a time: the readable reference the native scan must match. */
function referenceScan(x: ScanCase): { y: Float32Array; h: Float32Array } {
  const { batch, length: L, dim: D, stateSize: N } = x;
  const y = new Float32Array(batch * L * D);
  const h = x.h0 ? Float32Array.from(x.h0) : new Float32Array(batch * D * N);
  for (let b = 0; b < batch; b++) {
    for (let t = 0; t < L; t++) {
      for (let d = 0; d < D; d++) {
        const at = (b * L + t) * D + d;
        const delta = x.delta[at];
        const u = x.u[at];
        let acc = 0;
        for (let n = 0; n < N; n++) {
          const hi = (b * D + d) * N + n;
          const deltaA = Math.exp(delta * x.A[d * N + n]);
          const deltaBu = delta * x.B[(b * L + t) * N + n] * u;
          h[hi] = deltaA * h[hi] + deltaBu;
          acc += x.C[(b * L + t) * N + n] * h[hi];
        }
        y[at] = acc + x.D[d] * u;
      }
    }
  }
  return { y, h };
}

function scanCase(batch: number, length: number, dim: number, stateSize: number, withH0: boolean): ScanCase {
  const bld = batch * length * dim;
  const bln = batch * length * stateSize;
  return {
    u: randoms(bld, 1),
    // delta arrives softplus'ed (positive); A = -exp(A_log) is negative.
    delta: randoms(bld, 2).map((v) => Math.log1p(Math.exp(v))),
    A: randoms(dim * stateSize, 3).map((v) => -Math.exp(v)),
    B: randoms(bln, 4),
    C: randoms(bln, 5),
    D: randoms(dim, 6),
    h0: withH0 ? randoms(batch * dim * stateSize, 7) : undefined,
    batch,
    length,
    dim,
    stateSize,
  };
}

function referenceRmsNorm(x: Float32Array, w: Float32Array | undefined, h: number, eps: number): Float32Array {
  const y = new Float32Array(x.length);
  for (let r = 0; r < x.length / h; r++) {
    let ss = 0;
    for (let i = 0; i < h; i++) ss += x[r * h + i] ** 2;
    const inv = 1 / Math.sqrt(ss / h + eps);
    for (let i = 0; i < h; i++) y[r * h + i] = x[r * h + i] * inv * (w ? w[i] : 1);
  }
  return y;
}

function referenceLayerNorm(x: Float32Array, g: Float32Array | undefined, b: Float32Array | undefined, h: number, eps: number): Float32Array {
  const y = new Float32Array(x.length);
  for (let r = 0; r < x.length / h; r++) {
    let mean = 0;
    for (let i = 0; i < h; i++) mean += x[r * h + i] / h;
    let v = 0;
    for (let i = 0; i < h; i++) v += (x[r * h + i] - mean) ** 2 / h;
    for (let i = 0; i < h; i++) y[r * h + i] = ((x[r * h + i] - mean) / Math.sqrt(v + eps)) * (g ? g[i] : 1) + (b ? b[i] : 0);
  }
  return y;
}

describe('native fused kernels', () => {
  it('are registered for the native backend, or selecting it fails with a build hint', async () => {
    await selectNativeOrExpectClearError();
    for (const name of [FUSED.selectiveScan, FUSED.rmsNorm, FUSED.layerNorm]) {
      expect(tf.getKernel(name, 'native') !== undefined).toBe(built);
      // Not for the other backends (model code falls back to composed ops there), except the
      // scan, which wasm has as a JS kernel (src/kernels/wasm/scan-kernel.ts).
      if (name !== FUSED.selectiveScan) expect(tf.getKernel(name, 'wasm')).toBeUndefined();
    }
  });

  describe.runIf(built)('selective scan', () => {
    beforeAll(async () => {
      await tf.setBackend('native');
    });

    for (const withH0 of [false, true]) {
      // 5 channels: one partial block of the native scan; 37: two full blocks and a partial one.
      // State size 5: the prompt scan sums the states in pairs, the last one alone.
      for (const [dim, stateSize] of [[5, 4], [37, 4], [37, 5]] as const) {
        it(`matches the step-by-step reference (dim ${dim}, state ${stateSize}, h0 ${withH0 ? 'given' : 'zero'})`, () => {
          const x = scanCase(2, 7, dim, stateSize, withH0);
          const ref = referenceScan(x);
          const out = selectiveScan(x);
          expectClose(out.y, ref.y, 1e-5);
          expectClose(out.h, ref.h, 1e-5);
        });
      }
    }

    it('splits a large scan across threads with the same result', () => {
      // 2*64*40*16 state updates: above the native threshold for threading; 6 channel-block tasks.
      const x = scanCase(2, 64, 40, 16, true);
      const ref = referenceScan(x);
      const before = getNumThreads();
      try {
        for (const threads of [1, 3]) {
          setNumThreads(threads);
          const out = selectiveScan(x);
          expectClose(out.y, ref.y, 1e-4);
          expectClose(out.h, ref.h, 1e-4);
        }
      } finally {
        setNumThreads(before);
      }
    });

    it('carries state: two chunks with h0 = the first final state equal one pass', () => {
      const x = scanCase(1, 6, 3, 8, false);
      const whole = selectiveScan(x);
      const part = (from: number, to: number, h0?: Float32Array): ScanCase => ({
        ...x,
        u: x.u.slice(from * 3, to * 3),
        delta: x.delta.slice(from * 3, to * 3),
        B: x.B.slice(from * 8, to * 8),
        C: x.C.slice(from * 8, to * 8),
        length: to - from,
        h0,
      });
      const first = selectiveScan(part(0, 4));
      const second = selectiveScan(part(4, 6, first.h));
      expectClose([...first.y, ...second.y], whole.y, 1e-6);
      expectClose(second.h, whole.h, 1e-6);
    });

    it(`runs as the tfjs kernel ${FUSED.selectiveScan} with outputs [y, h]`, () => {
      const x = scanCase(2, 5, 3, 4, true);
      const ref = referenceScan(x);
      const [B, L, D, N] = [2, 5, 3, 4];
      const inputs = {
        u: tf.tensor(x.u, [B, L, D]),
        delta: tf.tensor(x.delta, [B, L, D]),
        A: tf.tensor(x.A, [D, N]),
        B: tf.tensor(x.B, [B, L, N]),
        C: tf.tensor(x.C, [B, L, N]),
        D: tf.tensor(x.D, [D]),
        h0: tf.tensor(x.h0!, [B, D, N]),
      };
      const [y, h] = tf.engine().runKernel(FUSED.selectiveScan, inputs, {}) as tf.Tensor[];
      expect(y.shape).toEqual([B, L, D]);
      expect(h.shape).toEqual([B, D, N]);
      expectClose(y.dataSync(), ref.y, 1e-5);
      expectClose(h.dataSync(), ref.h, 1e-5);
      tf.dispose([...Object.values(inputs), y, h]);
    });

    it('names the input whose shape is wrong', () => {
      const t = (shape: number[]): tf.Tensor => tf.zeros(shape);
      const inputs = { u: t([1, 2, 3]), delta: t([1, 2, 3]), A: t([3, 4]), B: t([1, 2, 4]), C: t([1, 2, 5]), D: t([3]) };
      expect(() => tf.engine().runKernel(FUSED.selectiveScan, inputs, {})).toThrow(
        `${FUSED.selectiveScan}: input 'C' must have shape [1,2,4], got [1,2,5]`,
      );
      tf.dispose(Object.values(inputs));
    });

    it('refuses a state size above 256 with an error, not silently', () => {
      const t = (shape: number[]): tf.Tensor => tf.zeros(shape);
      const inputs = { u: t([1, 2, 3]), delta: t([1, 2, 3]), A: t([3, 300]), B: t([1, 2, 300]), C: t([1, 2, 300]), D: t([3]) };
      expect(() => tf.engine().runKernel(FUSED.selectiveScan, inputs, {})).toThrow('selective scan: state size above 256');
      tf.dispose(Object.values(inputs));
    });
  });

  describe.runIf(built)('RMSNorm and LayerNorm', () => {
    beforeAll(async () => {
      await tf.setBackend('native');
    });
    const h = 16;
    const x = randoms(3 * 4 * h, 11).map((v) => v * 5 + 2);
    const w = randoms(h, 12);
    const b = randoms(h, 13);

    it('rmsNorm matches the reference, with and without weight', () => {
      expectClose(rmsNorm(x, w, h, 1e-6), referenceRmsNorm(x, w, h, 1e-6), 1e-5);
      expectClose(rmsNorm(x, undefined, h, 1e-2), referenceRmsNorm(x, undefined, h, 1e-2), 1e-5);
    });

    it('layerNorm matches the reference, with and without gamma/beta', () => {
      expectClose(layerNorm(x, w, b, h, 1e-5), referenceLayerNorm(x, w, b, h, 1e-5), 1e-5);
      expectClose(layerNorm(x, undefined, undefined, h, 1e-2), referenceLayerNorm(x, undefined, undefined, h, 1e-2), 1e-5);
    });

    it(`run as tfjs kernels ${FUSED.rmsNorm} and ${FUSED.layerNorm} over the last dim`, () => {
      const xt = tf.tensor(x, [3, 4, h]);
      const wt = tf.tensor(w);
      const bt = tf.tensor(b);
      const rms = tf.engine().runKernel(FUSED.rmsNorm, { x: xt, weight: wt }, { epsilon: 1e-6 }) as tf.Tensor;
      const ln = tf.engine().runKernel(FUSED.layerNorm, { x: xt, gamma: wt, beta: bt }, { epsilon: 1e-5 }) as tf.Tensor;
      expect(rms.shape).toEqual([3, 4, h]);
      expectClose(rms.dataSync(), referenceRmsNorm(x, w, h, 1e-6), 1e-5);
      expectClose(ln.dataSync(), referenceLayerNorm(x, w, b, h, 1e-5), 1e-5);
      // And against the composed tfjs ops a model uses without the native backend.
      const composed = tf.tidy(() => tf.mul(tf.mul(xt, tf.rsqrt(tf.add(tf.mean(tf.square(xt), -1, true), 1e-6))), wt));
      expectClose(rms.dataSync(), composed.dataSync(), 1e-5);
      tf.dispose([xt, wt, bt, rms, ln, composed]);
    });

    it('rejects a weight of the wrong width', () => {
      const xt = tf.zeros([2, h]);
      const wt = tf.zeros([h + 1]);
      expect(() => tf.engine().runKernel(FUSED.rmsNorm, { x: xt, weight: wt }, {})).toThrow(
        `${FUSED.rmsNorm}: input 'weight' must have shape [16], got [17]`,
      );
      tf.dispose([xt, wt]);
    });
  });
});
