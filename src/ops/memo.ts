import type * as tf from '@tensorflow/tfjs-core';

/**
 * Where an op keeps a tensor it makes once per forward call and shares across layers (masks,
 * constant matrices): `make` runs on the first use of `key` in the call, and the caller frees what
 * was made when the call ends. Layers pass their ForwardContext's memo.
 */
export type Memo = <T extends tf.Tensor>(key: string, make: () => T) => T;
