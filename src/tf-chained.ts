import * as tf from '@tensorflow/tfjs-core';

/**
 * tfjs-core's Node bundle leaves out the chained tensor methods (`x.add(y)`, `x.reshape(s)`)
 * that its browser build and the `@tensorflow/tfjs` package install. Tessera's layers read far
 * better with them, so install the same thin wrappers here (only where missing, so a tfjs that
 * already registered them is left untouched).
 */
const OPS = [
  'abs', 'add', 'all', 'any', 'argMax', 'cast', 'clipByValue', 'concat', 'cos', 'cumsum', 'div', 'equal',
  'erf', 'exp', 'expandDims', 'flatten', 'gather', 'greater', 'less', 'lessEqual', 'log', 'logSoftmax',
  'logicalAnd', 'matMul', 'max', 'maximum', 'mean', 'min', 'minimum', 'mul', 'neg', 'pow', 'relu', 'reshape',
  'rsqrt', 'sigmoid', 'sin', 'slice', 'softmax', 'softplus', 'split', 'sqrt', 'square', 'squeeze', 'sub',
  'sum', 'tanh', 'tile', 'transpose', 'where', 'zerosLike',
] as const;

const proto = tf.Tensor.prototype as unknown as Record<string, unknown>;
const ops = tf as unknown as Record<string, (...args: unknown[]) => tf.Tensor>;
for (const name of OPS) {
  if (typeof proto[name] === 'function') continue;
  const op = ops[name]!;
  proto[name] = function (this: tf.Tensor, ...args: unknown[]) {
    return op(this, ...args);
  };
}
const casts: Record<string, tf.DataType> = { toFloat: 'float32', toInt: 'int32', toBool: 'bool' };
for (const [name, dtype] of Object.entries(casts)) {
  if (typeof proto[name] !== 'function') {
    proto[name] = function (this: tf.Tensor) {
      return tf.cast(this, dtype);
    };
  }
}
