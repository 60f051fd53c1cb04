/// <reference types="@tensorflow/tfjs-core/dist/public/chained_ops/register_all_chained_ops.js" preserve="true" />
import * as tf from '@tensorflow/tfjs-core';

/**
 * The chained tensor methods (`x.add(y)`, `x.reshape(s)`), all of them, typed and at run time.
 *
 * tfjs-core declares them on `Tensor` in `dist/public/chained_ops/*.d.ts`, but neither its
 * `index.d.ts` pulls those declarations in nor its Node bundle installs the methods (its browser
 * build and the `@tensorflow/tfjs` package do). The reference directive above carries the
 * declarations into Tessera's own `.d.ts` files (`preserve` keeps it in the emitted `.d.ts`), so a
 * user's project that imports `tessera` sees the same methods Tessera installs here. Why not import
 * tfjs-core's own `chained_ops` modules: they are ES modules whose imports Node cannot resolve
 * (no file extensions) and load tfjs-core's ops a second time; the bodies are one line each, so
 * they are restated here. `tests/types/chained-ops.test.ts` checks this list against every method
 * tfjs-core declares and every prototype assignment in its `chained_ops` sources, so the two cannot
 * drift. A method already present (another tfjs package installed it) is left untouched.
 */

/** Methods whose body is `tf.<name>(this, ...args)`. */
const SAME_NAME = [
  'abs', 'acos', 'acosh', 'add', 'all', 'any', 'argMax', 'argMin', 'asin', 'asinh', 'atan', 'atan2',
  'atanh', 'avgPool', 'batchNorm', 'batchToSpaceND', 'broadcastTo', 'cast', 'ceil', 'clipByValue',
  'conv1d', 'conv2d', 'conv2dTranspose', 'cos', 'cosh', 'cumprod', 'cumsum', 'depthToSpace',
  'depthwiseConv2d', 'dilation2d', 'div', 'divNoNan', 'dot', 'elu', 'equal', 'erf', 'euclideanNorm',
  'exp', 'expandDims', 'expm1', 'fft', 'floor', 'floorDiv', 'gather', 'greater', 'greaterEqual',
  'ifft', 'irfft', 'isFinite', 'isInf', 'isNaN', 'leakyRelu', 'less', 'lessEqual',
  'localResponseNormalization', 'log', 'log1p', 'logSigmoid', 'logSoftmax', 'logSumExp',
  'logicalAnd', 'logicalNot', 'logicalOr', 'logicalXor', 'matMul', 'max', 'maxPool', 'maximum',
  'mean', 'min', 'minimum', 'mirrorPad', 'mod', 'mul', 'neg', 'norm', 'notEqual', 'oneHot',
  'onesLike', 'pad', 'pool', 'pow', 'prelu', 'prod', 'reciprocal', 'relu', 'relu6', 'reshape',
  'reverse', 'rfft', 'round', 'rsqrt', 'selu', 'separableConv2d', 'sigmoid', 'sign', 'sin', 'sinh',
  'slice', 'softmax', 'softplus', 'spaceToBatchND', 'split', 'sqrt', 'square', 'squaredDifference',
  'squeeze', 'step', 'stridedSlice', 'sub', 'sum', 'tan', 'tanh', 'tile', 'topk', 'transpose',
  'unique', 'unsortedSegmentSum', 'unstack', 'zerosLike',
] as const satisfies readonly (keyof typeof tf)[];

/** Methods whose body is `tf.image.<name>(this, ...args)`. */
const IMAGE = ['resizeBilinear', 'resizeNearestNeighbor'] as const satisfies readonly (keyof typeof tf.image)[];

type Method = (this: tf.Tensor, ...args: never[]) => unknown;

/** The methods whose body is not a plain call with `this` first, as tfjs-core writes them. */
const SPECIAL: Record<string, Method> = {
  as1D(this: tf.Tensor) { return tf.reshape(this, [this.size]); },
  as2D(this: tf.Tensor, rows: number, columns: number) { return tf.reshape(this, [rows, columns]); },
  as3D(this: tf.Tensor, rows: number, columns: number, depth: number) { return tf.reshape(this, [rows, columns, depth]); },
  as4D(this: tf.Tensor, rows: number, columns: number, depth: number, depth2: number) {
    return tf.reshape(this, [rows, columns, depth, depth2]);
  },
  as5D(this: tf.Tensor, rows: number, columns: number, depth: number, depth2: number, depth3: number) {
    return tf.reshape(this, [rows, columns, depth, depth2, depth3]);
  },
  asScalar(this: tf.Tensor) {
    tf.util.assert(this.size === 1, () => 'The array must have only 1 element.');
    return tf.reshape(this, []);
  },
  asType(this: tf.Tensor, dtype: tf.DataType) { return tf.cast(this, dtype); },
  toBool(this: tf.Tensor) { return tf.cast(this, 'bool'); },
  toFloat(this: tf.Tensor) { return tf.cast(this, 'float32'); },
  toInt(this: tf.Tensor) { return tf.cast(this, 'int32'); },
  flatten(this: tf.Tensor) { return tf.reshape(this, [this.size]); },
  reshapeAs(this: tf.Tensor, x: tf.Tensor) { return tf.reshape(this, x.shape); },
  // `this` is one of the values, not the condition: x.where(cond, y) is tf.where(cond, x, y).
  where(this: tf.Tensor, condition: tf.Tensor, x: tf.Tensor) { return tf.where(condition, this, x); },
  concat(this: tf.Tensor, x: tf.Tensor | tf.Tensor[], axis?: number) {
    return tf.concat([this, ...(x instanceof tf.Tensor ? [x] : x)], axis);
  },
  stack(this: tf.Tensor, x: tf.Tensor | tf.Tensor[], axis?: number) {
    return tf.stack([this, ...(x instanceof tf.Tensor ? [x] : x)], axis);
  },
};

/** Every chained method name Tessera installs (for the drift test). */
export const CHAINED_METHODS: readonly string[] = [...SAME_NAME, ...IMAGE, ...Object.keys(SPECIAL)];

const proto = tf.Tensor.prototype as unknown as Record<string, unknown>;

/** Install `body` as `name` unless present; like tfjs's own, it refuses a disposed tensor first. */
function install(name: string, body: (self: tf.Tensor, args: unknown[]) => unknown): void {
  if (typeof proto[name] === 'function') return;
  proto[name] = function (this: tf.Tensor, ...args: unknown[]) {
    (this as unknown as { throwIfDisposed(): void }).throwIfDisposed();
    return body(this, args);
  };
}

const ops = tf as unknown as Record<string, (...args: unknown[]) => unknown>;
const imageOps = tf.image as unknown as Record<string, (...args: unknown[]) => unknown>;
for (const name of SAME_NAME) install(name, (self, args) => ops[name]!(self, ...args));
for (const name of IMAGE) install(name, (self, args) => imageOps[name]!(self, ...args));
for (const [name, method] of Object.entries(SPECIAL)) {
  install(name, (self, args) => (method as (this: tf.Tensor, ...a: unknown[]) => unknown).apply(self, args));
}
