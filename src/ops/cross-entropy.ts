import * as tf from '@tensorflow/tfjs-core';
import { FUSED } from '../kernels/contract.js';
import { canFuse, runFused, runFusedOutputs } from './dispatch.js';

/**
 * Cross-entropy per row: `-log softmax(logits[n])[targets[n]]` = logsumexp(logits[n]) −
 * logits[n, targets[n]], for logits [N, V] and int32 targets [N] in [0, V); returns [N].
 *
 * The backend's fused kernel runs where it may (native, also while gradients are recorded: its
 * gradient is the backward kernel below): one pass per row for the logsumexp and the loss, and
 * the gradient written once per logit. Otherwise {@link referenceCrossEntropy}.
 */
export function crossEntropy(logits: tf.Tensor2D, targets: tf.Tensor1D): tf.Tensor1D {
  const [rows] = logits.shape;
  if (targets.rank !== 1 || targets.shape[0] !== rows) {
    throw new Error(`crossEntropy: targets have shape [${targets.shape}], expected [${rows}] (one per row of the logits [${logits.shape}])`);
  }
  if (logits.dtype !== 'float32' || !canFuse(FUSED.crossEntropy)) return referenceCrossEntropy(logits, targets);
  // The kernel checks the targets against the vocabulary itself (it reads them anyway).
  return tf.tidy(() => runFusedOutputs(FUSED.crossEntropy, { logits, targets: targets.toInt() })[0] as tf.Tensor1D);
}

/**
 * The reference composition and its gradient in one: the textbook form, log-softmax times a
 * one-hot summed over the vocabulary, builds and differentiates several [N, V] tensors (a
 * 32000-wide vocabulary makes them the largest of a training step); here the forward reads the
 * logits for one logsumexp and one gather, and the gradient is written directly as
 * dy · (softmax(logits) − onehot(targets)), the one-hot part as N scattered corrections.
 */
export function referenceCrossEntropy(logits: tf.Tensor2D, targets: tf.Tensor1D): tf.Tensor1D {
  const [rows, vocab] = logits.shape;
  checkTargets(targets, vocab);
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

/**
 * Targets outside [0, V) would gather another row's logit without a word (the flat index stays
 * in range), so they are checked; this reads the N targets back from the backend.
 */
function checkTargets(targets: tf.Tensor1D, vocab: number): void {
  const ids = targets.dataSync();
  for (let r = 0; r < ids.length; r++) {
    const id = ids[r]!;
    if (!(id >= 0 && id < vocab && Number.isInteger(id))) throw new Error(`crossEntropy: target ${id} of row ${r} is outside the vocabulary [0, ${vocab})`);
  }
}

/**
 * The fused kernel's gradient: the backward kernel from the saved logits, targets and the
 * forward's logsumexp. The logsumexp output never leaves crossEntropy, so only the loss's dy counts.
 */
tf.registerGradient({
  kernelName: FUSED.crossEntropy,
  inputsToSave: ['logits', 'targets'],
  outputsToSave: [false, true],
  gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
    const [dLoss] = dy as tf.Tensor[];
    const [logits, targets, logSumExp] = saved as [tf.Tensor, tf.Tensor, tf.Tensor];
    return {
      logits: () => runFused(FUSED.crossEntropyBackward, { logits, targets, logSumExp, dy: dLoss }),
      targets: () => tf.zerosLike(targets),
    };
  },
});
