import * as tf from '@tensorflow/tfjs-core';
import { causalConv } from '../ops/causal-conv.js';
import { derivedOf, registerDerived } from '../ops/derived-weights.js';
import { fusedMambaMixer, type MambaMixerCall, type MambaMixerWeights } from '../ops/mamba-mixer.js';
import type { SelectiveScan } from '../ops/scan-reference.js';
import { selectiveScan } from '../ops/selective-scan.js';
import { memoize, memoOf, type ForwardContext } from './context.js';
import { init } from './init.js';
import { Linear } from './linear.js';
import { Layer } from './module.js';
import { RMSNorm } from './norm.js';

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
 * The intermediate values the Mamba mixer exposes as hook points: `conv` (u, [B, L, D]), `delta`,
 * `B`, `C`, `scan` (y before the gate, [B, L, D]) and `state` (h after the call, [B, D, N]).
 */
export const MAMBA_TAPS = { conv: 'conv', delta: 'delta', B: 'B', C: 'C', scan: 'scan', state: 'state' } as const;
export type MambaTap = (typeof MAMBA_TAPS)[keyof typeof MAMBA_TAPS];

/**
 * The Mamba selective-state-space mixer (Gu & Dao 2023), as one screen of math:
 *   [x, z] = in_proj(h);  u = SiLU(conv1d(x));  [dt, B, C] = x_proj(u);
 *   delta = softplus(dt_proj(dt));  y = scan(u, delta, A = -exp(A_log), B, C, D);
 *   out = out_proj(y ⊙ SiLU(z)),
 * where the scan is h_t = deltaA_t ⊙ h_{t-1} + deltaBu_t, y_t = C_t · h_t + D u_t with
 * deltaA = exp(delta A), deltaBu = delta B u (src/ops/scan-reference.ts).
 * With `ctx.cache` it continues from, and stores, the conv window [B, D, d_conv] and the SSM state
 * h [B, D, N], so a token costs O(1) whatever the position. Hook taps: {@link MAMBA_TAPS}.
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
   * The scan: by default the `selectiveScan` op (the backend's kernel, else the reference math);
   * set it to `sequentialScan` (the reference) or another implementation to compare.
   */
  scan: SelectiveScan = selectiveScan;

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
    this.declareTaps(...Object.values(MAMBA_TAPS));
  }

  protected forward(hidden: tf.Tensor, ctx: ForwardContext): tf.Tensor {
    return tf.tidy(() => {
      const fused = this.fused(hidden, ctx);
      if (fused !== undefined) return fused;
      const tap = <T extends tf.Tensor>(name: MambaTap, value: T): T => this.tap(name, value, ctx);
      const past = ctx.cache?.get(this);
      const keep = realTokens(ctx, hidden); // [B, L, 1]: 0 on padding, which must not touch the state

      const [x, z] = tf.split(this.inProj.call(hidden, ctx), 2, -1) as [tf.Tensor3D, tf.Tensor3D]; // [B, L, D]
      const conv = causalConv(x, this.convWeight, this.convBias, { window: past?.conv, keep, memo: memoOf(ctx) });
      const u = tap(MAMBA_TAPS.conv, silu(conv.y) as tf.Tensor3D); // [B, L, D]
      const { dt, B, C } = this.selection(u, ctx); // [B, L, R], [B, L, N], [B, L, N]
      const delta = tap(MAMBA_TAPS.delta, zeroPadding(tf.softplus(this.dtProj.call(dt, ctx)), keep)); // [B, L, D]
      const A = derivedOf(this.A_log, 'A', negExp) as tf.Tensor2D; // -exp(A_log), [D, N]
      const D = this.D as tf.Tensor1D; // [D]

      const { y, h } = this.scan({ u, delta, A, B, C, D, h0: past?.ssm as tf.Tensor3D }); // y: [B, L, D]
      const state = tap(MAMBA_TAPS.state, h); // [B, D, N]
      ctx.cache?.set(this, { conv: conv.window, ssm: state });
      return this.outProj.call(tap(MAMBA_TAPS.scan, y).mul(silu(z)), ctx); // [B, L, H]
    });
  }

  /**
   * `hidden + this(norm(hidden))` as one kernel call where the whole block can run fused (norm an
   * RMSNorm, no hook on either): a decode step then costs two kernels fewer per layer.
   */
  override preNormResidual(hidden: tf.Tensor, norm: Layer, ctx: ForwardContext): tf.Tensor {
    if (norm instanceof RMSNorm && !norm.hasHooks() && !this.hasHooks()) {
      const fused = this.fused(hidden, ctx, norm);
      if (fused !== undefined) return fused;
    }
    return super.preNormResidual(hidden, norm, ctx);
  }

  /** The weights as plain tensors, in PyTorch's layouts (what the fused mixer kernel takes). */
  mixerWeights(): MambaMixerWeights {
    const norms = this.dtNorm !== undefined && this.bNorm !== undefined && this.cNorm !== undefined
      ? { dt: this.dtNorm.weight, B: this.bNorm.weight, C: this.cNorm.weight, eps: this.dtNorm.eps }
      : undefined;
    return {
      inWeight: this.inProj.weight, inBias: this.inProj.bias, convWeight: this.convWeight, convBias: this.convBias,
      xWeight: this.xProj.weight, dtWeight: this.dtProj.weight, dtBias: this.dtProj.bias!,
      A: derivedOf(this.A_log, 'A', negExp), D: this.D, outWeight: this.outProj.weight, outBias: this.outProj.bias,
      innerNorms: norms,
    };
  }

  /**
   * The mixer (after `preNorm`, with the residual added, when given) as the fused op, with its
   * states kept; undefined where the op may not run. Its steps count as observed when the scan is
   * not the default or a hook sits inside the mixer.
   */
  private fused(hidden: tf.Tensor, ctx: ForwardContext, preNorm?: RMSNorm): tf.Tensor | undefined {
    const past = ctx.cache?.get(this);
    const call: MambaMixerCall = {
      conv: past?.conv,
      ssm: past?.ssm,
      keep: realTokens(ctx, hidden),
      preNorm: preNorm === undefined ? undefined : { weight: preNorm.weight, eps: preNorm.eps },
      stepsObserved: this.scan !== selectiveScan || this.hasInnerHooks(),
    };
    const result = fusedMambaMixer(hidden, this.mixerWeights(), call);
    if (result === undefined) return undefined;
    ctx.cache?.set(this, { conv: result.conv, ssm: result.ssm });
    return result.out;
  }

  /** dt, B and C from x_proj(u), through Jamba's RMSNorms where the mixer has them; B and C are taps. */
  private selection(u: tf.Tensor, ctx: ForwardContext): { dt: tf.Tensor; B: tf.Tensor3D; C: tf.Tensor3D } {
    const { stateSize: n, dtRank } = this.options;
    const [dt, B, C] = tf.split(this.xProj.call(u, ctx), [dtRank, n, n], -1) as tf.Tensor3D[];
    const norm = (layer: RMSNorm | undefined, x: tf.Tensor3D): tf.Tensor3D => (layer === undefined ? x : (layer.call(x, ctx) as tf.Tensor3D));
    return {
      dt: norm(this.dtNorm, dt!),
      B: this.tap(MAMBA_TAPS.B, norm(this.bNorm, B!), ctx),
      C: this.tap(MAMBA_TAPS.C, norm(this.cNorm, C!), ctx),
    };
  }
}

/**
 * The mask of this call's tokens as [B, L, 1] floats, or undefined when every token is real.
 * Made once per call and shared by the Mamba layers.
 */
function realTokens(ctx: ForwardContext, hidden: tf.Tensor): tf.Tensor | undefined {
  const mask = ctx.attentionMask;
  if (mask === undefined) return undefined;
  const [batch, length] = hidden.shape as [number, number];
  const total = mask.shape[1];
  return memoize(ctx, `mamba.keep:${batch}x${length}`, () => mask.slice([0, total - length], [batch, length]).toFloat().reshape([batch, length, 1]));
}

/** delta = 0 on padding: exp(delta A) = 1 and delta B u = 0, so the state passes through unchanged. */
function zeroPadding(delta: tf.Tensor, keep: tf.Tensor | undefined): tf.Tensor3D {
  return (keep === undefined ? delta : delta.mul(keep)) as tf.Tensor3D;
}

function negExp(aLog: tf.Tensor): tf.Tensor {
  return tf.neg(tf.exp(aLog));
}

function silu(x: tf.Tensor): tf.Tensor {
  return x.mul(tf.sigmoid(x));
}
