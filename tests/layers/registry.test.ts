import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import {
  AutoCausalLM,
  ConfigReader,
  HYBRID_MODEL_TYPE,
  Layer,
  Linear,
  createContext,
  layerRegistry,
  registerFeedForward,
  registerMixer,
  registerNorm,
  type ForwardContext,
  type LayerSpec,
} from '../../src/index.js';

// Everything below is user code: new parts registered by name, Tessera's source untouched.

/** A causal moving average over the last `window` tokens, then a learned projection. */
class MovingAverage extends Layer {
  readonly proj: Linear;
  constructor(
    readonly hiddenSize: number,
    readonly window: number,
  ) {
    super();
    this.proj = this.addModule('proj', new Linear(hiddenSize, hiddenSize));
  }
  protected forward(x: tf.Tensor, ctx: ForwardContext): tf.Tensor {
    return tf.tidy(() => {
      const length = x.shape[1]!;
      const sums = tf.cumsum(x, 1);
      const shifted = tf.concat([tf.zeros([x.shape[0]!, this.window, this.hiddenSize]), sums], 1).slice([0, 0, 0], sums.shape);
      const counts = tf.minimum(tf.range(1, length + 1), this.window).reshape([1, length, 1]);
      return this.proj.call(sums.sub(shifted).div(counts), ctx);
    });
  }
}

/** A feed-forward that scales its input by a learned vector. */
class Scale extends Layer {
  readonly gain: tf.Variable;
  constructor(size: number) {
    super();
    this.gain = this.addParameter('gain', tf.fill([size], 0.5));
  }
  protected forward(x: tf.Tensor): tf.Tensor {
    return x.mul(this.gain);
  }
}

/** A norm that divides by the largest absolute value. */
class MaxNorm extends Layer {
  protected forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => x.div(tf.abs(x).max(-1, true).add(1e-6)));
  }
}

registerMixer('moving-average', (options, hiddenSize) => new MovingAverage(hiddenSize, new ConfigReader(options, 'moving-average').integer('window', 3)));
registerFeedForward('scale', (_options, hiddenSize) => new Scale(hiddenSize));
registerNorm('max-norm', () => new MaxNorm());

const average: LayerSpec = { mixer: { type: 'moving-average', window: 2 }, ffn: { type: 'scale' }, ffnNorm: { type: 'max-norm' } };
const attention: LayerSpec = { mixer: { type: 'attention', numHeads: 2 }, ffn: { type: 'gated', intermediateSize: 32 } };
const config = {
  model_type: HYBRID_MODEL_TYPE,
  vocabSize: 50,
  hiddenSize: 8,
  norm: { type: 'rmsnorm', eps: 1e-6 },
  layers: [average, attention, average],
};

describe('plug-in parts through the layer registry', () => {
  it('lists the built-in parts', () => {
    const r = layerRegistry();
    expect(r.names('mixer')).toEqual(expect.arrayContaining(['attention', 'mamba', 'moving-average']));
    expect(r.names('ffn')).toEqual(expect.arrayContaining(['dense', 'gated', 'moe', 'scale']));
    expect(r.names('norm')).toEqual(expect.arrayContaining(['rmsnorm', 'layernorm', 'max-norm']));
  });

  it('the toy mixer computes a causal moving average', () => {
    const mixer = layerRegistry().create('mixer', { type: 'moving-average', window: 2 }, 2) as MovingAverage;
    mixer.proj.weight.assign(tf.eye(2));
    const y = mixer.call(tf.tensor3d([[[1, 10], [3, 20], [5, 60]]]), createContext());
    // window 2: [x0, (x0+x1)/2, (x1+x2)/2]
    expect(y.arraySync()).toEqual([[[1, 10], [2, 15], [4, 40]]]);
    y.dispose();
    mixer.dispose();
  });

  it('builds, runs, saves and reloads a hybrid made with user parts', async () => {
    const model = AutoCausalLM.fromConfig(config);
    const blocks = model.layers.items;
    expect(blocks.map((b) => b.mixer.constructor.name)).toEqual(['MovingAverage', 'Attention', 'MovingAverage']);
    expect(blocks[0]!.ffn).toBeInstanceOf(Scale);
    expect(blocks[0]!.ffnNorm).toBeInstanceOf(MaxNorm);
    expect(model.namedParameters().map(([n]) => n)).toContain('layers.0.mixer.proj.weight');

    const input = tf.tensor2d([[1, 2, 3, 4, 5]], undefined, 'int32');
    const run = (m: typeof model): Float32Array => tf.tidy(() => m.forward(input).logits.dataSync() as Float32Array);
    const before = run(model);
    expect(before.every(Number.isFinite)).toBe(true);
    const n = tf.memory().numTensors;
    run(model);
    expect(tf.memory().numTensors).toBe(n);

    const dir = await mkdtemp(join(tmpdir(), 'tessera-plugin-'));
    try {
      await model.save(dir);
      const reloaded = await AutoCausalLM.fromDir(dir);
      expect(reloaded.layers.items[2]!.mixer).toBeInstanceOf(MovingAverage);
      expect(run(reloaded)).toEqual(before);
      reloaded.dispose();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    input.dispose();
    model.dispose();
  });
});
