import * as tf from '@tensorflow/tfjs-core';
import { adamUpdate } from '../ops/adam.js';

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

/**
 * tfjs's AdamOptimizer with each weight's update done by the `adamUpdate` op: on the native
 * backend one fused pass per weight instead of ten tensor ops. Same math, state, weights
 * (`getWeights`/`setWeights`) and serialisation as `tf.train.adam`, so the two are interchangeable.
 */
export class FusedAdamOptimizer extends tf.AdamOptimizer {
  override applyGradients(variableGradients: tf.NamedTensorMap | { name: string; tensor: tf.Tensor }[]): void {
    const self = this as unknown as AdamSlots;
    const names = Array.isArray(variableGradients) ? variableGradients.map((v) => v.name) : Object.keys(variableGradients);
    // accBeta = βᵗ at this step (tfjs starts it at β and multiplies after each step).
    const [accBeta1, accBeta2] = [self.accBeta1.dataSync()[0]!, self.accBeta2.dataSync()[0]!];
    const step = { learningRate: self.learningRate, beta1: self.beta1, beta2: self.beta2, epsilon: self.epsilon, correction1: 1 - accBeta1, correction2: 1 - accBeta2 };
    tf.tidy(() => {
      names.forEach((name, i) => {
        const value = tf.engine().registeredVariables[name]!;
        self.accumulatedFirstMoment[i] ??= { originalName: `${name}/m`, variable: tf.tidy(() => tf.zerosLike(value).variable(false)) };
        self.accumulatedSecondMoment[i] ??= { originalName: `${name}/v`, variable: tf.tidy(() => tf.zerosLike(value).variable(false)) };
        const gradient = Array.isArray(variableGradients) ? variableGradients[i]!.tensor : variableGradients[name];
        if (gradient == null) return;
        const m = self.accumulatedFirstMoment[i]!.variable;
        const v = self.accumulatedSecondMoment[i]!.variable;
        const [newValue, newM, newV] = adamUpdate(value, gradient, m, v, step);
        m.assign(newM);
        v.assign(newV);
        value.assign(newValue);
      });
      self.accBeta1.assign(tf.mul(self.accBeta1, self.beta1));
      self.accBeta2.assign(tf.mul(self.accBeta2, self.beta2));
    });
    this.incrementIterations();
  }
}

/**
 * Adam as `tf.train.adam(learningRate, beta1, beta2, epsilon)` takes it, with each weight's update
 * fused into one pass where the backend has the kernel (native); elsewhere the same ops as tfjs.
 */
export function adam(learningRate = 0.001, beta1 = 0.9, beta2 = 0.999, epsilon?: number): tf.Optimizer {
  return new FusedAdamOptimizer(learningRate, beta1, beta2, epsilon);
}
