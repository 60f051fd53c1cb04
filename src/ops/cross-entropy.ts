import * as tf from '@tensorflow/tfjs-core';

/**
 * Cross-entropy per row: `-log softmax(logits[n])[targets[n]]` = logsumexp(logits[n]) −
 * logits[n, targets[n]], for logits [N, V] and int32 targets [N]; returns [N].
 *
 * This is the reference composition and its gradient in one: the textbook form, log-softmax
 * times a one-hot summed over the vocabulary, builds and differentiates several [N, V] tensors (a
 * 32000-wide vocabulary makes them the largest of a training step); here the forward reads the
 * logits for one logsumexp and one gather, and the gradient is written directly as
 * dy · (softmax(logits) − onehot(targets)), the one-hot part as N scattered corrections.
 */
export function crossEntropy(logits: tf.Tensor2D, targets: tf.Tensor1D): tf.Tensor1D {
  const [rows, vocab] = logits.shape;
  if (targets.rank !== 1 || targets.shape[0] !== rows) {
    throw new Error(`crossEntropy: targets have shape [${targets.shape}], expected [${rows}] (one per row of the logits [${logits.shape}])`);
  }
  // tfjs types the forward as taking (...tensors, save) in one rest parameter.
  const withGradient = tf.customGrad(((x: tf.Tensor, save: tf.GradSaveFunc) => {
    // Flat positions of each row's target, shared by the forward gather and the gradient's scatter.
    const flatTargets = tf.range(0, rows * vocab, vocab, 'int32').add(targets.toInt());
    const logSumExp = tf.logSumExp(x, 1); // [N]
    save([x, logSumExp, flatTargets]);
    const value = logSumExp.sub(tf.gather(x.reshape([rows * vocab]), flatTargets));
    return {
      value,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [input, lse, flat] = saved as [tf.Tensor2D, tf.Tensor1D, tf.Tensor1D];
        const probabilities = tf.exp(input.sub(lse.reshape([rows, 1]))).mul(dy.reshape([rows, 1])).reshape([rows * vocab]);
        // Subtract dy at each target: softmax·dy − dy there, written over the N entries.
        const atTargets = tf.gather(probabilities, flat).sub(dy.reshape([rows]));
        return tf.tensorScatterUpdate(probabilities, flat.reshape([rows, 1]), atTargets).reshape([rows, vocab]);
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return tf.tidy(() => withGradient(logits) as tf.Tensor1D);
}
