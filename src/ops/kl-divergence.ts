import * as tf from '@tensorflow/tfjs-core';
import { FUSED } from '../kernels/contract.js';
import { canFuse, runFused, runFusedOutputs } from './dispatch.js';

/**
 * KL(teacher ‖ student) between the temperature-softened distributions over the last axis, per
 * position: Σ p_t (log p_t − log p_s), p = softmax(logits / T). Logits of equal shape [..., V];
 * returns [...]. The backend's fused kernel runs where it may (native, also while gradients are
 * recorded): one pass per row for both softmaxes and the sum, and a gradient written once per
 * logit, (p_s − p_t)/T·dy for the student. Otherwise {@link referenceKlDivergence}.
 */
export function klDivergence(student: tf.Tensor, teacher: tf.Tensor, temperature: number): tf.Tensor {
  if (!(temperature > 0 && Number.isFinite(temperature))) throw new Error(`klDivergence: temperature must be a finite number > 0, got ${temperature}`);
  if (!tf.util.arraysEqual(student.shape, teacher.shape)) {
    throw new Error(`klDivergence: student shape [${student.shape}] differs from teacher shape [${teacher.shape}]`);
  }
  if (student.rank < 1) throw new Error('klDivergence: logits need a vocabulary axis, got a scalar');
  if (student.dtype !== 'float32' || teacher.dtype !== 'float32' || !canFuse(FUSED.klDivergence)) return referenceKlDivergence(student, teacher, temperature);
  return tf.tidy(() => {
    const vocab = student.shape[student.rank - 1]!;
    const rows = student.size / Math.max(vocab, 1);
    const [kl] = runFusedOutputs(FUSED.klDivergence, { student: student.reshape([rows, vocab]), teacher: teacher.reshape([rows, vocab]) }, { temperature });
    return kl!.reshape(student.shape.slice(0, -1));
  });
}

/** The reference composition: two log-softmaxes, an exp, a product and a sum over the vocabulary. */
export function referenceKlDivergence(student: tf.Tensor, teacher: tf.Tensor, temperature: number): tf.Tensor {
  return tf.tidy(() => {
    const logTeacher = tf.logSoftmax(tf.div(teacher, temperature));
    const logStudent = tf.logSoftmax(tf.div(student, temperature));
    return tf.sum(tf.mul(tf.exp(logTeacher), tf.sub(logTeacher, logStudent)), -1);
  });
}

/**
 * The fused kernel's gradient: the backward kernel, once per logits input that leads to what is
 * differentiated (tfjs calls only those), from the saved logits and the forward's three outputs.
 * The log-sum-exp outputs never leave klDivergence, so only the KL's dy counts.
 */
tf.registerGradient({
  kernelName: FUSED.klDivergence,
  inputsToSave: ['student', 'teacher'],
  outputsToSave: [true, true, true],
  gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[], attrs: tf.NamedAttrMap) => {
    const [dKl] = dy as tf.Tensor[];
    const [student, teacher, kl, lseStudent, lseTeacher] = saved as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor];
    const inputs = { student, teacher, lseStudent, lseTeacher, kl, dy: dKl };
    const temperature = attrs.temperature as number;
    return {
      student: () => runFused(FUSED.klDivergenceBackward, inputs, { temperature, wrt: 'student' }),
      teacher: () => runFused(FUSED.klDivergenceBackward, inputs, { temperature, wrt: 'teacher' }),
    };
  },
});
