import * as tf from '@tensorflow/tfjs-core';
import '../tf-chained.js';
import { crossEntropy } from '../ops/cross-entropy.js';
import { klDivergence } from '../ops/kl-divergence.js';

/** Options shared by the distillation losses. */
export interface MaskOptions {
  /** [B, L], 1 = token, 0 = padding; padded positions do not count. Default: every position. */
  mask?: tf.Tensor;
}

/** Scores at or below this are treated as masked by the model itself (causal or padding bias). */
const MASKED_SCORE = -1e4;

function checkSameShape(what: string, student: tf.Tensor, teacher: tf.Tensor): void {
  if (!tf.util.arraysEqual(student.shape, teacher.shape)) {
    throw new Error(
      `${what}: student shape [${student.shape}] differs from teacher shape [${teacher.shape}]` +
        (student.rank === 3 ? ' (project the student with a learned projection when hidden sizes differ)' : ''),
    );
  }
}

/** `mask` as float [B, L], checked against the leading dims of `values`. */
function positionMask(what: string, mask: tf.Tensor, batch: number, length: number): tf.Tensor2D {
  if (mask.rank !== 2 || mask.shape[0] !== batch || mask.shape[1] !== length) {
    throw new Error(`${what}: mask has shape [${mask.shape}], expected [${batch}, ${length}] (batch, length)`);
  }
  return mask.toFloat() as tf.Tensor2D;
}

/** Mean of per-position values [B, L] over the positions the mask keeps (all without one). */
function maskedMean(what: string, perPosition: tf.Tensor, mask?: tf.Tensor): tf.Scalar {
  if (mask === undefined) return perPosition.mean() as tf.Scalar;
  const [batch, length] = perPosition.shape as [number, number];
  const m = positionMask(what, mask, batch, length);
  return perPosition.mul(m).sum().div(m.sum().maximum(1)) as tf.Scalar;
}

/**
 * DistilBERT's soft-target loss: KL(teacher ‖ student) between the temperature-softened
 * distributions over the last axis, scaled by T² so its gradients keep their size as T changes;
 * averaged over (unmasked) positions. Logits [B, L, V] (or [B, V] without a mask). The per-position
 * KL is the `klDivergence` op (one fused pass per position on the native backend).
 */
export function klDivergenceLoss(
  studentLogits: tf.Tensor,
  teacherLogits: tf.Tensor,
  options: MaskOptions & { temperature?: number } = {},
): tf.Scalar {
  const temperature = options.temperature ?? 1;
  if (!(temperature > 0)) throw new Error(`klDivergenceLoss: temperature must be > 0, got ${temperature}`);
  checkSameShape('klDivergenceLoss', studentLogits, teacherLogits);
  return tf.tidy(() => {
    const perPosition = klDivergence(studentLogits, teacherLogits, temperature);
    return maskedMean('klDivergenceLoss', perPosition, options.mask).mul(temperature * temperature) as tf.Scalar;
  });
}

/** Mean squared error between hidden states [B, L, H], averaged over features and unmasked positions. */
export function hiddenMseLoss(student: tf.Tensor, teacher: tf.Tensor, options: MaskOptions = {}): tf.Scalar {
  checkSameShape('hiddenMseLoss', student, teacher);
  return tf.tidy(() => maskedMean('hiddenMseLoss', student.sub(teacher).square().mean(-1), options.mask));
}

/** 1 − cosine similarity of hidden states [B, L, H] per position, averaged over unmasked positions. */
export function hiddenCosineLoss(student: tf.Tensor, teacher: tf.Tensor, options: MaskOptions = {}): tf.Scalar {
  checkSameShape('hiddenCosineLoss', student, teacher);
  return tf.tidy(() => {
    const dot = student.mul(teacher).sum(-1);
    const norms = student.square().sum(-1).mul(teacher.square().sum(-1)).sqrt().maximum(1e-12);
    return maskedMean('hiddenCosineLoss', tf.scalar(1).sub(dot.div(norms)), options.mask);
  });
}

/**
 * TinyBERT's attention loss: MSE between attention scores (or probabilities) [B, heads, L, S].
 * Entries the teacher's model masked (causal future, padded keys: scores ≤ -1e4) and, with a mask,
 * padded queries and keys do not count; their huge negative values would otherwise swamp the loss.
 */
export function attentionLoss(student: tf.Tensor, teacher: tf.Tensor, options: MaskOptions = {}): tf.Scalar {
  checkSameShape('attentionLoss', student, teacher);
  if (student.rank !== 4) throw new Error(`attentionLoss: expected [batch, heads, queries, keys], got shape [${student.shape}]`);
  return tf.tidy(() => {
    const [batch, , length, keys] = student.shape as [number, number, number, number];
    let valid = teacher.greater(MASKED_SCORE).toFloat();
    if (options.mask !== undefined) {
      const m = positionMask('attentionLoss', options.mask, batch, keys);
      const queries = m.slice([0, keys - length], [batch, length]).reshape([batch, 1, length, 1]);
      valid = valid.mul(queries).mul(m.reshape([batch, 1, 1, keys]));
    }
    const squared = tf.where(valid.toBool(), student.sub(teacher).square(), tf.zerosLike(student));
    return squared.sum().div(valid.sum().maximum(1)) as tf.Scalar;
  });
}

/**
 * Mean next-token cross-entropy of a causal LM, as Hugging Face computes it with `labels =
 * input_ids`: the logits at position t [B, L, V] predict token t + 1 of `inputIds` [B, L]; with a
 * mask, only positions whose next token is unmasked count (HF's -100 labels). Runs through the
 * `crossEntropy` op, which never builds a one-hot over the vocabulary.
 */
export function nextTokenCrossEntropy(logits: tf.Tensor, inputIds: tf.Tensor, options: MaskOptions = {}): tf.Scalar {
  if (logits.rank !== 3) throw new Error(`nextTokenCrossEntropy: expected logits [batch, length, vocab], got shape [${logits.shape}]`);
  const [batch, length, vocab] = logits.shape as [number, number, number];
  if (inputIds.rank !== 2 || inputIds.shape[0] !== batch || inputIds.shape[1] !== length) {
    throw new Error(`nextTokenCrossEntropy: inputIds has shape [${inputIds.shape}], expected [${batch}, ${length}] like the logits`);
  }
  if (length < 2) throw new Error('nextTokenCrossEntropy: needs at least 2 positions (each predicts the next token)');
  return tf.tidy(() => {
    // Every position gets a target, the last one a placeholder with weight 0: slicing the
    // [B, L, V] logits to the first L − 1 positions would make the gradient pad a full copy back.
    const next = tf.concat([inputIds.toInt().slice([0, 1], [batch, length - 1]), tf.zeros([batch, 1], 'int32')], 1);
    const nll = crossEntropy(logits.reshape([batch * length, vocab]) as tf.Tensor2D, next.reshape([batch * length]) as tf.Tensor1D);
    const keep = options.mask === undefined ? tf.ones([batch, length - 1]) : positionMask('nextTokenCrossEntropy', options.mask, batch, length).slice([0, 1], [batch, length - 1]);
    const weights = tf.concat([keep, tf.zeros([batch, 1])], 1).reshape([batch * length]);
    return nll.mul(weights).sum().div(weights.sum().maximum(1)) as tf.Scalar;
  });
}
