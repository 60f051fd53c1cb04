import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';

import { FUSED, requireFloat32, requirePresent, requireShape } from '../contract.js';
import type { NativeAddon } from './addon.js';
import { allocate, kernelConfigs, values, type Backend, type KernelArgs } from './kernel-utils.js';

/** `[rows, vocab]` of a rank-2 logits input, with a clear error otherwise. */
function rowsOf(kernel: string, name: string, t: TensorInfo): [number, number] {
  if (t.shape.length !== 2) throw new Error(`${kernel}: input '${name}' must be [rows, vocab], got [${t.shape}]`);
  return t.shape as [number, number];
}

/** The int32 targets, each checked to index the vocabulary. */
function targetsOf(kernel: string, backend: Backend, targets: TensorInfo, rows: number, vocab: number): Int32Array {
  if (targets.dtype !== 'int32') throw new Error(`${kernel}: input 'targets' must be int32, got ${targets.dtype}`);
  requireShape(kernel, 'targets', targets, [rows]);
  const stored = backend.data.get(targets.dataId).values;
  // A bool tensor cast to int32 may keep its Uint8Array (the cpu Cast relabels): convert those.
  const ids = stored instanceof Int32Array ? stored : Int32Array.from(stored as ArrayLike<number>);
  for (let r = 0; r < rows; r++) {
    const id = ids[r]!;
    if (!(id >= 0 && id < vocab)) throw new Error(`${kernel}: target ${id} of row ${r} is outside the vocabulary [0, ${vocab})`);
  }
  return ids;
}

function out(backend: Backend, shape: number[], data: Float32Array): TensorInfo {
  return backend.makeTensorInfo(shape, 'float32', data);
}

/**
 * `{ logits: [N, V], targets: int32 [N] }` → `[loss [N], logSumExp [N]]` (FUSED.crossEntropy):
 * one pass per row for the max and one for the sum of exponentials, rows over both cores.
 */
function crossEntropyKernel(addon: NativeAddon): KernelFunc {
  return (({ inputs, backend }: KernelArgs) => {
    const kernel = FUSED.crossEntropy;
    requirePresent(kernel, inputs, ['logits', 'targets']);
    const { logits, targets } = inputs as Record<'logits' | 'targets', TensorInfo>;
    requireFloat32(kernel, { logits });
    const [rows, vocab] = rowsOf(kernel, 'logits', logits);
    const ids = targetsOf(kernel, backend, targets, rows, vocab);
    const loss = new Float32Array(rows);
    const lse = new Float32Array(rows);
    if (rows > 0) addon.crossEntropy(values(backend, logits), ids, loss, lse, vocab);
    return [out(backend, [rows], loss), out(backend, [rows], lse)];
  }) as unknown as KernelFunc;
}

/**
 * `{ logits, targets, logSumExp, dy: [N] }` → `dy · (softmax(logits) − onehot(targets))` [N, V]
 * (FUSED.crossEntropyBackward): one write per logit, no one-hot, no [N, V] intermediates.
 */
function crossEntropyBackwardKernel(addon: NativeAddon): KernelFunc {
  return (({ inputs, backend }: KernelArgs) => {
    const kernel = FUSED.crossEntropyBackward;
    requirePresent(kernel, inputs, ['logits', 'targets', 'logSumExp', 'dy']);
    const { logits, targets, logSumExp, dy } = inputs as Record<'logits' | 'targets' | 'logSumExp' | 'dy', TensorInfo>;
    requireFloat32(kernel, { logits, logSumExp, dy });
    const [rows, vocab] = rowsOf(kernel, 'logits', logits);
    const ids = targetsOf(kernel, backend, targets, rows, vocab);
    requireShape(kernel, 'logSumExp', logSumExp, [rows]);
    requireShape(kernel, 'dy', dy, [rows]);
    const dx = allocate(backend, rows * vocab);
    if (dx.length > 0) addon.crossEntropyBackward(values(backend, logits), ids, values(backend, logSumExp), values(backend, dy), dx, vocab);
    return out(backend, [rows, vocab], dx);
  }) as unknown as KernelFunc;
}

/** The temperature attr, checked. */
function temperatureOf(kernel: string, attrs: KernelArgs['attrs']): number {
  const temperature = Number(attrs?.temperature ?? 1);
  if (!(temperature > 0 && Number.isFinite(temperature))) throw new Error(`${kernel}: temperature must be a finite number > 0, got ${temperature}`);
  return temperature;
}

/**
 * `{ student: [N, V], teacher: [N, V] }`, `{ temperature }` → `[kl, lseStudent, lseTeacher]`, each
 * [N] (FUSED.klDivergence): per row, both softmaxes at the temperature and the KL in one pass
 * after the maxima.
 */
function klDivergenceKernel(addon: NativeAddon): KernelFunc {
  return (({ inputs, backend, attrs }: KernelArgs) => {
    const kernel = FUSED.klDivergence;
    requirePresent(kernel, inputs, ['student', 'teacher']);
    const { student, teacher } = inputs as Record<'student' | 'teacher', TensorInfo>;
    requireFloat32(kernel, inputs);
    const [rows, vocab] = rowsOf(kernel, 'student', student);
    requireShape(kernel, 'teacher', teacher, [rows, vocab]);
    const temperature = temperatureOf(kernel, attrs);
    const [kl, lseS, lseT] = [0, 1, 2].map(() => new Float32Array(rows)) as [Float32Array, Float32Array, Float32Array];
    if (rows * vocab > 0) addon.klDivergence(values(backend, student), values(backend, teacher), kl, lseS, lseT, vocab, temperature);
    return [out(backend, [rows], kl), out(backend, [rows], lseS), out(backend, [rows], lseT)];
  }) as unknown as KernelFunc;
}

/**
 * `{ student, teacher, lseStudent, lseTeacher, kl, dy: [N] }`, `{ temperature, wrt }` → the
 * gradient of Σ dy·kl with respect to the `wrt` ('student' or 'teacher') logits, [N, V]
 * (FUSED.klDivergenceBackward).
 */
function klDivergenceBackwardKernel(addon: NativeAddon): KernelFunc {
  return (({ inputs, backend, attrs }: KernelArgs) => {
    const kernel = FUSED.klDivergenceBackward;
    requirePresent(kernel, inputs, ['student', 'teacher', 'lseStudent', 'lseTeacher', 'kl', 'dy']);
    requireFloat32(kernel, inputs);
    const { student, teacher, lseStudent: lseS, lseTeacher: lseT, kl, dy } = inputs as Record<'student' | 'teacher' | 'lseStudent' | 'lseTeacher' | 'kl' | 'dy', TensorInfo>;
    const [rows, vocab] = rowsOf(kernel, 'student', student);
    requireShape(kernel, 'teacher', teacher, [rows, vocab]);
    for (const [name, t] of [['lseStudent', lseS], ['lseTeacher', lseT], ['kl', kl], ['dy', dy]] as const) requireShape(kernel, name, t, [rows]);
    const wrt = String(attrs?.wrt ?? 'student');
    if (wrt !== 'student' && wrt !== 'teacher') throw new Error(`${kernel}: wrt must be 'student' or 'teacher', got '${wrt}'`);
    const grad = allocate(backend, rows * vocab);
    if (grad.length > 0) {
      const [s, t, ls, lt, k, d] = [student, teacher, lseS, lseT, kl, dy].map((x) => values(backend, x)) as [Float32Array, Float32Array, Float32Array, Float32Array, Float32Array, Float32Array];
      addon.klDivergenceBackward(s, t, ls, lt, k, d, grad, vocab, temperatureOf(kernel, attrs), wrt === 'teacher');
    }
    return out(backend, [rows, vocab], grad);
  }) as unknown as KernelFunc;
}

/** The native cross-entropy and KL kernels, forward and backward (native/src/train.c). */
export function lossKernels(addon: NativeAddon, backendName: string): KernelConfig[] {
  return kernelConfigs(backendName, [
    [FUSED.crossEntropy, crossEntropyKernel(addon)],
    [FUSED.crossEntropyBackward, crossEntropyBackwardKernel(addon)],
    [FUSED.klDivergence, klDivergenceKernel(addon)],
    [FUSED.klDivergenceBackward, klDivergenceBackwardKernel(addon)],
  ]);
}
