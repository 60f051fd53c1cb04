/**
 * A tensor as read from a checkpoint file, before it becomes a tf.Tensor: the loaders produce
 * these and the weight-assignment step consumes them, so file formats and models stay apart.
 */
export interface RawTensor {
  /** Shape as stored, e.g. PyTorch's `[out, in]` for a linear weight. */
  shape: number[];
  /** Floats of any width are upcast to float32 (tfjs has no half types); integers become int32. */
  dtype: 'float32' | 'int32';
  data: Float32Array | Int32Array;
  /** The dtype in the file (`F32`, `F16`, `BF16`, `I64`, ...), for messages and round-trip saving. */
  sourceDtype: string;
}

/** Checkpoint contents: parameter name (as in the file) -> tensor. */
export type TensorMap = Map<string, RawTensor>;
