import * as tf from '@tensorflow/tfjs-core';
import type { ForwardContext } from './context.js';
import { init } from './init.js';
import { Linear } from './linear.js';
import { Layer } from './module.js';
import { RMSNorm } from './norm.js';
import { sequentialScan, type SelectiveScan } from './selective-scan.js';

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
  /** The scan used for multi-token calls; replace to compare implementations. */
  scan: SelectiveScan = sequentialScan;

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
    this.outProj = this.addModule('outProj', new Linear(inner, hiddenSize, { bias: projBias }));
    if (options.innerNormEps !== undefined) {
      this.dtNorm = this.addModule('dtNorm', new RMSNorm(dtRank, options.innerNormEps));
      this.bNorm = this.addModule('bNorm', new RMSNorm(stateSize, options.innerNormEps));
      this.cNorm = this.addModule('cNorm', new RMSNorm(stateSize, options.innerNormEps));
    }
    this.declareTaps('conv', 'delta', 'B', 'C', 'scan', 'state');
  }

  protected forward(hidden: tf.Tensor, ctx: ForwardContext): tf.Tensor {
    return tf.tidy(() => {
      const [batch, length] = hidden.shape as [number, number, number];
      const { stateSize: n, dtRank, convKernel } = this.options;
      const dim = this.innerSize;
      const past = ctx.cache?.get(this);

      const [x, z] = tf.split(this.inProj.call(hidden, ctx), 2, -1) as [tf.Tensor3D, tf.Tensor3D];

      // Causal depthwise conv: each output sees its own and the previous K-1 inputs.
      const history = past?.conv ?? tf.zeros([batch, dim, convKernel]); // [B, D, K]
      const previous = history.slice([0, 0, 1], [batch, dim, convKernel - 1]).transpose([0, 2, 1]);
      const window = tf.concat([previous, x], 1); // [B, K-1+L, D]
      const kernel = this.convWeight.reshape([dim, convKernel]).transpose(); // [K, D]
      let conv: tf.Tensor = this.convBias ?? tf.zeros([dim]);
      for (let k = 0; k < convKernel; k++) {
        conv = window.slice([0, k, 0], [batch, length, dim]).mul(kernel.slice([k, 0], [1, dim])).add(conv);
      }
      const u = this.tap('conv', silu(conv), ctx) as tf.Tensor3D; // [B, L, D]

      const [dtLow, bRaw, cRaw] = tf.split(this.xProj.call(u, ctx), [dtRank, n, n], -1);
      const dt = this.dtNorm ? this.dtNorm.call(dtLow!, ctx) : dtLow!;
      const B = this.tap('B', (this.bNorm ? this.bNorm.call(bRaw!, ctx) : bRaw!) as tf.Tensor3D, ctx);
      const C = this.tap('C', (this.cNorm ? this.cNorm.call(cRaw!, ctx) : cRaw!) as tf.Tensor3D, ctx);
      const delta = this.tap('delta', tf.softplus(this.dtProj.call(dt, ctx)) as tf.Tensor3D, ctx);
      const A = tf.neg(tf.exp(this.A_log)) as tf.Tensor2D;

      const scanned = this.scan({ u, delta, A, B, C, D: this.D as tf.Tensor1D, h0: past?.ssm as tf.Tensor3D });
      const y = scanned.y;
      const h = this.tap('state', scanned.h, ctx);
      if (ctx.cache !== undefined) {
        const inputs = tf.concat([history.transpose([0, 2, 1]), x], 1); // [B, K+L, D]
        const conv = inputs.slice([0, length, 0], [batch, convKernel, dim]).transpose([0, 2, 1]);
        ctx.cache.set(this, { conv, ssm: h });
      }
      const gated = this.tap('scan', y, ctx).mul(silu(z));
      return this.outProj.call(gated, ctx);
    });
  }
}

function silu(x: tf.Tensor): tf.Tensor {
  return x.mul(tf.sigmoid(x));
}
