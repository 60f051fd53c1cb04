import * as tf from '@tensorflow/tfjs-core';
import { adamUpdate } from '../ops/adam.js';
import { checkKeys, type KeyList } from '../util/options.js';

/** The slots tfjs's AdamOptimizer keeps (private in its typings), which this subclass shares. */
interface AdamSlots {
  accumulatedFirstMoment: { originalName: string; variable: tf.Variable }[];
  accumulatedSecondMoment: { originalName: string; variable: tf.Variable }[];
  accBeta1: tf.Variable;
  accBeta2: tf.Variable;
  learningRate: number;
  beta1: number;
  beta2: number;
  epsilon: number;
}

/** Options of {@link adam} beyond tfjs's four arguments. */
export interface AdamOptions {
  /**
   * Decoupled weight decay (AdamW, as PyTorch's `torch.optim.AdamW` applies it): each step the
   * weight shrinks by `learningRate · weightDecay · weight` before Adam's update. Default 0 (Adam).
   */
  weightDecay?: number;
}

const ADAM_OPTION_KEYS = { weightDecay: true } as const satisfies KeyList<AdamOptions>;

/**
 * tfjs's AdamOptimizer with each weight's update done by the `adamUpdate` op: on the native
 * backend one fused pass per weight, in place, instead of ten tensor ops. Same math, state,
 * weights (`getWeights`/`setWeights`) and serialisation as `tf.train.adam`, so the two are
 * interchangeable (with a `weightDecay`, `getConfig` also carries it).
 */
export class FusedAdamOptimizer extends tf.AdamOptimizer {
  /** AdamW's decoupled weight decay (0: Adam). */
  readonly weightDecay: number;
  /**
   * β₁ᵗ and β₂ᵗ for the coming step, as the float32 values tfjs's accBeta variables hold (its
   * corrections 1 − βᵗ are float32 too, so the same rounding gives the same steps), kept here so
   * that a step never reads them back from the backend (a stall on a GPU backend).
   */
  private accBetas: [number, number];

  constructor(learningRate: number, beta1: number, beta2: number, epsilon?: number | null, options: AdamOptions = {}) {
    super(learningRate, beta1, beta2, epsilon ?? undefined);
    checkKeys(options, ADAM_OPTION_KEYS, 'adam options');
    const weightDecay = options.weightDecay ?? 0;
    if (!(Number.isFinite(weightDecay) && weightDecay >= 0)) throw new Error(`adam: weightDecay must be a finite number >= 0, got ${weightDecay}`);
    this.weightDecay = weightDecay;
    this.accBetas = [Math.fround(beta1), Math.fround(beta2)];
  }

  override async setWeights(weightValues: Parameters<tf.AdamOptimizer['setWeights']>[0]): Promise<void> {
    await super.setWeights(weightValues);
    // As tfjs sets accBeta: β^(iterations + 1).
    this.accBetas = [this.beta1, this.beta2].map((b) => Math.fround(Math.fround(b) ** (this.iterations + 1))) as [number, number];
  }

  override applyGradients(variableGradients: tf.NamedTensorMap | { name: string; tensor: tf.Tensor }[]): void {
    const self = this as unknown as AdamSlots;
    const names = Array.isArray(variableGradients) ? variableGradients.map((v) => v.name) : Object.keys(variableGradients);
    const [accBeta1, accBeta2] = this.accBetas;
    const step = {
      learningRate: self.learningRate,
      beta1: self.beta1,
      beta2: self.beta2,
      epsilon: self.epsilon,
      correction1: Math.fround(1 - accBeta1),
      correction2: Math.fround(1 - accBeta2),
      weightDecay: this.weightDecay,
    };
    tf.tidy(() => {
      names.forEach((name, i) => {
        const value = tf.engine().registeredVariables[name]!;
        self.accumulatedFirstMoment[i] ??= { originalName: `${name}/m`, variable: tf.tidy(() => tf.zerosLike(value).variable(false)) };
        self.accumulatedSecondMoment[i] ??= { originalName: `${name}/v`, variable: tf.tidy(() => tf.zerosLike(value).variable(false)) };
        const gradient = Array.isArray(variableGradients) ? variableGradients[i]!.tensor : variableGradients[name];
        if (gradient == null) return;
        const m = self.accumulatedFirstMoment[i]!.variable;
        const v = self.accumulatedSecondMoment[i]!.variable;
        // In place: the three results are assigned back right here.
        const [newValue, newM, newV] = adamUpdate(value, gradient, m, v, step, true);
        m.assign(newM);
        v.assign(newV);
        value.assign(newValue);
      });
      // Kept in step (no read) for code that looks at tfjs's own state.
      self.accBeta1.assign(tf.mul(self.accBeta1, self.beta1));
      self.accBeta2.assign(tf.mul(self.accBeta2, self.beta2));
    });
    this.accBetas = [Math.fround(accBeta1 * Math.fround(self.beta1)), Math.fround(accBeta2 * Math.fround(self.beta2))];
    this.incrementIterations();
  }

  override getConfig(): tf.serialization.ConfigDict {
    const config = super.getConfig();
    return this.weightDecay === 0 ? config : { ...config, weightDecay: this.weightDecay };
  }
}

/**
 * Adam as `tf.train.adam(learningRate, beta1, beta2, epsilon)` takes it, with each weight's update
 * fused into one pass where the backend has the kernel (native); elsewhere the same ops as tfjs.
 * `{ weightDecay }` makes it AdamW (decoupled weight decay).
 */
export function adam(learningRate = 0.001, beta1 = 0.9, beta2 = 0.999, epsilon?: number, options: AdamOptions = {}): FusedAdamOptimizer {
  return new FusedAdamOptimizer(learningRate, beta1, beta2, epsilon, options);
}
