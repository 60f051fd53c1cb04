import * as tf from '@tensorflow/tfjs-core';
import { memoize, type ForwardContext } from './context.js';
import { init } from './init.js';
import { Linear } from './linear.js';
import { Layer } from './module.js';
import { RMSNorm } from './norm.js';
import { defaultScan, fusedScanForSteps } from './fused-scan.js';
import { canFuseMixer, fusedMixer } from './fused-mamba.js';
import { decay } from './decay.js';
import { derivedOf, registerDerived } from '../ops/derived-weights.js';
import type { ScanInputs, ScanOutputs, SelectiveScan } from './selective-scan.js';

export interface MambaOptions {
  hiddenSize: number;
  /** N, the SSM state size per channel. */
  stateSize: number;
  /** Width of the causal depthwise convolution (d_conv). */
  convKernel: number;
  /** Inner width D = expand × hiddenSize. */
  expand: number;
  /** Rank of the delta projection (dt_rank / time_step_rank). */
  dtRank: number;
  convBias: boolean;
  /** Biases on in_proj and out_proj. */
  projBias: boolean;
  /** Jamba: RMSNorms on dt, B and C after x_proj, with this eps. */
  innerNormEps?: number;
}

/**
 * Mamba's defaults, shared by every config reader (HF `MambaConfig`, mamba_ssm's `ssm_cfg`,
 * Jamba's `mamba_*` keys and hybrid parts): the values of the reference implementations.
 */
export const MAMBA_DEFAULTS = { stateSize: 16, convKernel: 4, expand: 2, convBias: true, projBias: false } as const;

/** dt_rank "auto": ceil(hiddenSize / 16), as HF and mamba_ssm resolve it. */
export function defaultDtRank(hiddenSize: number): number {
  return Math.ceil(hiddenSize / 16);
}

/**
 * The Mamba selective-state-space mixer (Gu & Dao 2023), as one screen of math:
 *   [x, z] = in_proj(h);  u = SiLU(conv1d(x));  [dt, B, C] = x_proj(u);
 *   delta = softplus(dt_proj(dt));  y = scan(u, delta, A = -exp(A_log), B, C, D);
 *   out = out_proj(y ⊙ SiLU(z)).
 * With `ctx.cache` it continues from, and stores, the conv state [B, D, d_conv] (the last d_conv
 * inputs of the conv) and the SSM state h [B, D, N], so a token costs O(1) whatever the position.
 * Hook taps: `conv` (u, [B, L, D]), `delta`, `B`, `C`, `scan` (y before the gate) and `state` (h).
 */
export class MambaMixer extends Layer {
  readonly inProj: Linear;
  readonly xProj: Linear;
  readonly dtProj: Linear;
  readonly outProj: Linear;
  readonly convWeight: tf.Variable; // [D, 1, K], as PyTorch's depthwise Conv1d stores it
  readonly convBias?: tf.Variable;
  readonly A_log: tf.Variable; // [D, N]
  readonly D: tf.Variable; // [D]
  readonly dtNorm?: RMSNorm;
  readonly bNorm?: RMSNorm;
  readonly cNorm?: RMSNorm;
  readonly innerSize: number;
  /**
   * The scan: the backend's fused kernel or the chunked parallel scan by default (fused-scan.ts);
   * set it to `sequentialScan` (the reference) or another implementation to compare.
   */
  scan: SelectiveScan = defaultScan;

  constructor(readonly options: MambaOptions) {
    super();
    const { hiddenSize, stateSize, convKernel, dtRank, projBias } = options;
    const inner = (this.innerSize = options.expand * hiddenSize);
    this.inProj = this.addModule('inProj', new Linear(hiddenSize, 2 * inner, { bias: projBias }));
    this.convWeight = this.addParameter('convWeight', init.normal([inner, 1, convKernel], 0.1));
    if (options.convBias) this.convBias = this.addParameter('convBias', init.zeros([inner]));
    this.xProj = this.addModule('xProj', new Linear(inner, dtRank + 2 * stateSize));
    this.dtProj = this.addModule('dtProj', new Linear(dtRank, inner, { bias: true }));
    // S4D-real initialisation: A_n = -(n + 1), so the channels decay at different rates.
    const aInit = tf.tidy(() => tf.log(tf.tile(tf.range(1, stateSize + 1).reshape([1, stateSize]), [inner, 1])));
    this.A_log = this.addParameter('A_log', aInit);
    this.D = this.addParameter('D', init.ones([inner]));
    registerDerived(this.A_log, 'A', negExp); // A is needed on every token; keep it
    this.outProj = this.addModule('outProj', new Linear(inner, hiddenSize, { bias: projBias }));
    if (options.innerNormEps !== undefined) {
      this.dtNorm = this.addModule('dtNorm', new RMSNorm(dtRank, options.innerNormEps));
      this.bNorm = this.addModule('bNorm', new RMSNorm(stateSize, options.innerNormEps));
      this.cNorm = this.addModule('cNorm', new RMSNorm(stateSize, options.innerNormEps));
    }
    this.declareTaps('conv', 'delta', 'B', 'C', 'scan', 'state');
  }

  protected forward(hidden: tf.Tensor, ctx: ForwardContext): tf.Tensor {
    if (this.canFuse(hidden)) return this.fusedForward(hidden, ctx);
    return tf.tidy(() => {
      const [batch, length] = hidden.shape as [number, number, number];
      const { stateSize: n, dtRank, convKernel } = this.options;
      const dim = this.innerSize;
      const past = ctx.cache?.get(this);
      // Padding (mask 0) must not touch the state: its conv input is zeroed and its delta set to
      // 0, so exp(delta A) = 1 and delta B u = 0. A left-padded row then starts its real tokens
      // from the same zero state as the prompt alone.
      const keep = realTokens(ctx, batch, length); // [B, L, 1] or undefined

      const [xRaw, z] = tf.split(this.inProj.call(hidden, ctx), 2, -1) as [tf.Tensor3D, tf.Tensor3D];
      const x = keep === undefined ? xRaw : xRaw.mul(keep);

      // Causal depthwise conv over the last d_conv inputs: the cached ones, then this call's.
      const history = past?.conv ?? tf.zeros([batch, dim, convKernel]); // [B, D, K]
      let conv: tf.Tensor;
      let window: tf.Tensor; // the conv state after this call, [B, D, K]
      if (length === 1) {
        // One token: shift the window by one and take a dot product per channel. The shift is a
        // product with a 0/1 matrix rather than slice + concat along the last axis, which take
        // tfjs-wasm's element-by-element path (~0.6 ms per layer, 15% of a Mamba-130m step);
        // adding zeros and multiplying by 1 is exact.
        window = history
          .reshape([batch * dim, convKernel])
          .matMul(memoize(ctx, `mamba.shift:${convKernel}`, () => shiftLeft(convKernel)))
          .reshape([batch, dim, convKernel])
          .add(x.reshape([batch, dim, 1]).mul(memoize(ctx, `mamba.last:${convKernel}`, () => lastSlot(convKernel))));
        conv = window.mul(this.convWeight.reshape([dim, convKernel])).sum(2).reshape([batch, 1, dim]);
        if (this.convBias !== undefined) conv = conv.add(this.convBias);
      } else {
        const inputs = tf.concat([history.transpose([0, 2, 1]), x], 1); // [B, K+L, D]
        const kernel = this.convWeight.reshape([dim, convKernel]).transpose(); // [K, D]
        conv = this.convBias ?? tf.zeros([dim]);
        for (let k = 0; k < convKernel; k++) {
          conv = inputs.slice([0, k + 1, 0], [batch, length, dim]).mul(kernel.slice([k, 0], [1, dim])).add(conv);
        }
        window = inputs.slice([0, length, 0], [batch, convKernel, dim]).transpose([0, 2, 1]);
      }
      const u = this.tap('conv', silu(conv), ctx) as tf.Tensor3D; // [B, L, D]

      const [dtLow, bRaw, cRaw] = tf.split(this.xProj.call(u, ctx), [dtRank, n, n], -1);
      const dt = this.dtNorm ? this.dtNorm.call(dtLow!, ctx) : dtLow!;
      const B = this.tap('B', (this.bNorm ? this.bNorm.call(bRaw!, ctx) : bRaw!) as tf.Tensor3D, ctx);
      const C = this.tap('C', (this.cNorm ? this.cNorm.call(cRaw!, ctx) : cRaw!) as tf.Tensor3D, ctx);
      const deltaRaw = tf.softplus(this.dtProj.call(dt, ctx)) as tf.Tensor3D;
      const delta = this.tap('delta', keep === undefined ? deltaRaw : (deltaRaw.mul(keep) as tf.Tensor3D), ctx);
      const A = derivedOf(this.A_log, 'A', negExp) as tf.Tensor2D; // -exp(A_log)

      const scanInputs = { u, delta, A, B, C, D: this.D as tf.Tensor1D, h0: past?.ssm as tf.Tensor3D };
      const { y, h: scannedH } = length === 1 && !fusedScanForSteps(n) ? recurrentStep(scanInputs) : this.scan(scanInputs);
      const h = this.tap('state', scannedH, ctx);
      if (ctx.cache !== undefined) {
        // A padded single step keeps the old window (a multi-token call pads only on the left,
        // where the window is still all zeros). Arithmetic, not tf.where: wasm broadcasts the
        // condition with a slow Tile.
        const conv = keep !== undefined && length === 1 ? history.add(window.sub(history).mul(keep.reshape([batch, 1, 1]))) : window;
        ctx.cache.set(this, { conv, ssm: h });
      }
      const gated = this.tap('scan', y, ctx).mul(silu(z));
      return this.outProj.call(gated, ctx);
    });
  }

  /**
   * The backend's whole-mixer kernel (native) computes every step above in one call; it runs when
   * nothing needs the steps one by one: no gradients, the default scan, no hook inside the mixer,
   * and a state size the kernel takes.
   */
  private canFuse(hidden: tf.Tensor): boolean {
    return canFuseMixer(this.options.stateSize) && hidden.dtype === 'float32' && this.scan === defaultScan && !this.hasInnerHooks();
  }

  /**
   * The pre-norm residual block around this mixer, `hidden + mixer(norm(hidden))`, as one kernel
   * call where the mixer can be fused and `norm` is an RMSNorm without hooks; undefined otherwise
   * (the block then runs its steps one by one). Saves a decode step two kernels per layer.
   */
  residualForward(hidden: tf.Tensor, norm: Layer, ctx: ForwardContext): tf.Tensor | undefined {
    if (!(norm instanceof RMSNorm) || norm.hasHooks() || this.hasHooks() || !this.canFuse(hidden)) return undefined;
    return this.fusedForward(hidden, ctx, norm);
  }

  private fusedForward(hidden: tf.Tensor, ctx: ForwardContext, preNorm?: RMSNorm): tf.Tensor {
    return tf.tidy(() => {
      const [batch, length] = hidden.shape as [number, number, number];
      const past = ctx.cache?.get(this);
      const { out, conv, ssm } = fusedMixer(this, hidden, {
        keep: realTokens(ctx, batch, length)?.reshape([batch, length]),
        conv: past?.conv,
        ssm: past?.ssm,
        A: derivedOf(this.A_log, 'A', negExp),
        preNorm,
      });
      if (ctx.cache !== undefined) ctx.cache.set(this, { conv, ssm });
      return out;
    });
  }
}

/**
 * The mask of this call's tokens as [B, L, 1] floats, or undefined when every token is real.
 * Made once per call and shared by the Mamba layers.
 */
function realTokens(ctx: ForwardContext, batch: number, length: number): tf.Tensor | undefined {
  const mask = ctx.attentionMask;
  if (mask === undefined) return undefined;
  const total = mask.shape[1];
  return memoize(ctx, `mamba.keep:${batch}x${length}`, () => mask.slice([0, total - length], [batch, length]).toFloat().reshape([batch, length, 1]));
}

/** One token of the scan, O(1) in the position: h = exp(delta A) h + delta B u, y = C·h + D u. */
function recurrentStep({ u, delta, A, B, C, D, h0 }: ScanInputs): ScanOutputs {
  const [batch, , dim] = u.shape;
  const n = A.shape[1];
  const deltaA = decay(delta.reshape([batch, dim, 1]).mul(A)); // exp(delta A), [B, D, N]
  const deltaBu = delta.mul(u).reshape([batch, dim, 1]).mul(B.reshape([batch, 1, n])); // [B, D, N]
  const h = (h0 === undefined ? deltaBu : deltaA.mul(h0).add(deltaBu)) as tf.Tensor3D;
  const y = tf.matMul(h, C.reshape([batch, n, 1])).reshape([batch, 1, dim]).add(u.mul(D)) as tf.Tensor3D;
  return { y, h };
}

/** [K, K] with ones at (k + 1, k): `w · shiftLeft(K)` moves every entry of a window one slot left. */
function shiftLeft(k: number): tf.Tensor2D {
  const values = new Float32Array(k * k);
  for (let i = 0; i + 1 < k; i++) values[(i + 1) * k + i] = 1;
  return tf.tensor2d(values, [k, k]);
}

/** [K], one at the last slot: where a window's newest entry goes. */
function lastSlot(k: number): tf.Tensor1D {
  const values = new Float32Array(k);
  values[k - 1] = 1;
  return tf.tensor1d(values);
}

function negExp(aLog: tf.Tensor): tf.Tensor {
  return tf.neg(tf.exp(aLog));
}

function silu(x: tf.Tensor): tf.Tensor {
  return x.mul(tf.sigmoid(x));
}
