import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';

import { FUSED, requireShape, scanKernelInputs } from './contract.js';
import { kernelConfigs, values, type KernelArgs } from './native/kernel-utils.js';

/**
 * The selective scan's backward pass, one channel (b, d) at a time: a forward sweep recomputes
 * that channel's states h_t (L × N floats, so nothing [B, L, D, N] is ever held), then a reverse
 * sweep carries g = dLoss/dh_t back through h_t = a_t ⊙ h_{t−1} + δ_t B_t u_t, a_t = exp(δ_t A):
 *   g_t   = dy_t C_t + a_{t+1} ⊙ g_{t+1}      (g_L starts from dh, the final state's gradient)
 *   du_t  = dy_t D + δ_t Σ_n g_t B_t           dδ_t = Σ_n g_t (B_t u_t + A a_t h_{t−1})
 *   dA   += g_t δ_t a_t h_{t−1}                 dB_t += g_t δ_t u_t (summed over d)
 *   dC_t += dy_t h_t (summed over d)            dD += dy_t u_t,  dh0 = a_1 ⊙ g_1.
 * Plain JS over the backend's arrays: per state element a few multiply-adds, and the exp of the
 * forward sweep is kept for the reverse one. The wasm backend runs it (given its arrays); the
 * native backend has the same algorithm in C (native/src/scan-backward.c).
 */
function selectiveScanBackwardKernel(): KernelFunc {
  return (({ inputs, backend }: KernelArgs) => {
    const kernel = FUSED.selectiveScanBackward;
    const { batch, len, dim, nstate: n, ...t } = scanKernelInputs(kernel, inputs);
    const { dy, dh } = inputs as { dy?: TensorInfo; dh?: TensorInfo };
    requireShape(kernel, 'dy', dy, [batch, len, dim]);
    requireShape(kernel, 'dh', dh, [batch, dim, n]);
    const [u, delta, A, B, C, D] = [t.u, t.delta, t.A, t.B, t.C, t.D].map((x) => values(backend, x));
    const h0 = t.h0 === undefined ? undefined : values(backend, t.h0);
    const dys = dy === undefined ? undefined : values(backend, dy);
    const dhs = dh === undefined ? undefined : values(backend, dh);
    const du = new Float32Array(batch * len * dim);
    const ddelta = new Float32Array(batch * len * dim);
    const dA = new Float32Array(dim * n);
    const dB = new Float32Array(batch * len * n);
    const dC = new Float32Array(batch * len * n);
    const dD = new Float32Array(dim);
    const dh0 = new Float32Array(batch * dim * n);
    const states = new Float32Array((len + 1) * n); // h_{-1} = h0, then h_0 … h_{L−1}
    const decays = new Float32Array(len * n);
    const g = new Float32Array(n);
    for (let b = 0; b < batch; b++) {
      for (let d = 0; d < dim; d++) {
        const a0 = d * n;
        for (let j = 0; j < n; j++) states[j] = h0 === undefined ? 0 : h0[(b * dim + d) * n + j]!;
        for (let s = 0; s < len; s++) {
          const at = (b * len + s) * dim + d;
          const dt = delta[at]!;
          const ut = u[at]!;
          const bt = (b * len + s) * n;
          for (let j = 0; j < n; j++) {
            const a = Math.exp(dt * A[a0 + j]!);
            decays[s * n + j] = a;
            states[(s + 1) * n + j] = a * states[s * n + j]! + dt * B[bt + j]! * ut;
          }
        }
        for (let j = 0; j < n; j++) g[j] = dhs === undefined ? 0 : dhs[(b * dim + d) * n + j]!;
        let dDsum = 0;
        for (let s = len - 1; s >= 0; s--) {
          const at = (b * len + s) * dim + d;
          const dt = delta[at]!;
          const ut = u[at]!;
          const dyt = dys === undefined ? 0 : dys[at]!;
          const bt = (b * len + s) * n;
          let duSum = 0;
          let ddSum = 0;
          for (let j = 0; j < n; j++) {
            const gj = g[j]! + dyt * C[bt + j]!;
            const a = decays[s * n + j]!;
            const previous = states[s * n + j]!;
            dC[bt + j] += dyt * states[(s + 1) * n + j]!;
            duSum += gj * B[bt + j]!;
            ddSum += gj * (B[bt + j]! * ut + A[a0 + j]! * a * previous);
            dA[a0 + j] += gj * dt * a * previous;
            dB[bt + j] += gj * dt * ut;
            g[j] = a * gj;
          }
          du[at] = dyt * D[d]! + dt * duSum;
          ddelta[at] = ddSum;
          dDsum += dyt * ut;
        }
        dD[d] += dDsum;
        for (let j = 0; j < n; j++) dh0[(b * dim + d) * n + j] = g[j]!;
      }
    }
    return [
      backend.makeTensorInfo(t.u.shape, 'float32', du),
      backend.makeTensorInfo(t.delta.shape, 'float32', ddelta),
      backend.makeTensorInfo(t.A.shape, 'float32', dA),
      backend.makeTensorInfo(t.B.shape, 'float32', dB),
      backend.makeTensorInfo(t.C.shape, 'float32', dC),
      backend.makeTensorInfo(t.D.shape, 'float32', dD),
      backend.makeTensorInfo([batch, dim, n], 'float32', dh0),
    ];
  }) as unknown as KernelFunc;
}

/** The scan's backward kernel in JS, registered for `backendName`. */
export function scanBackwardKernelsJs(backendName: string): KernelConfig[] {
  return kernelConfigs(backendName, [[FUSED.selectiveScanBackward, selectiveScanBackwardKernel()]]);
}
