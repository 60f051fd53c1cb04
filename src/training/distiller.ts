import * as tf from '@tensorflow/tfjs-core';
import { hookPoints, runWithCache } from '../hooks/run.js';
import type { ActivationCache } from '../hooks/activation-cache.js';
import { createContext } from '../layers/context.js';
import { Linear } from '../layers/linear.js';
import { ATTENTION_TAPS, type AttentionTap } from '../ops/attention.js';
import type { Model } from '../models/model.js';
import { gradientsRegistered, registerGradients } from './gradients.js';
import { uniformLayerMap, type LayerMap } from './layer-map.js';
import { checkKeys, type KeyList } from '../util/options.js';
import { attentionLoss, hiddenCosineLoss, hiddenMseLoss, klDivergenceLoss } from './losses.js';

/** One batch of inputs, shared by teacher and student. */
export interface DistillBatch {
  /** int32 [B, L]. */
  inputIds: tf.Tensor2D;
  /** [B, L], 1 = token, 0 = padding; also masks the losses. */
  attentionMask?: tf.Tensor2D;
  /** [B, L] segment ids (BERT-style models). */
  tokenTypeIds?: tf.Tensor2D;
}

/** What to distil and how; every term is optional, at least one must be on. */
export interface DistillOptions {
  teacher: Model;
  student: Model;
  /** Any tfjs optimizer; it updates the student (and the projection) only. */
  optimizer: tf.Optimizer;
  /** Student layer → teacher layer; default {@link uniformLayerMap}. */
  layerMap?: LayerMap;
  /** Hidden states at `layers.{i}` (and `embeddings`, see `matchEmbeddings`). Default on, MSE, weight 1. */
  hidden?: false | { weight?: number; loss?: 'mse' | 'cosine' };
  /** Also match the embedding outputs (TinyBERT). Default true. */
  matchEmbeddings?: boolean;
  /** Attention maps at `layers.{i}.mixer.scores` (or `.probs`), TinyBERT-style. Default off. */
  attention?: false | { weight?: number; point?: Extract<AttentionTap, 'scores' | 'probs'> };
  /** Soft targets on `output.logits` (both models must produce logits), DistilBERT-style. Default off. */
  logits?: false | { weight?: number; temperature?: number };
  /**
   * A learned linear map student hidden → teacher hidden, shared by all layer pairs, used when
   * the sizes differ ('auto', the default). `false`: differing sizes are an error.
   */
  projection?: 'auto' | false;
  /** Seed of the projection's initial weights (same seed, same start); unseeded by default. */
  seed?: number;
}

const DISTILL_OPTION_KEYS = {
  teacher: true, student: true, optimizer: true, layerMap: true, hidden: true, matchEmbeddings: true, attention: true, logits: true, projection: true,
  seed: true,
} satisfies KeyList<DistillOptions>;
const HIDDEN_TERM_KEYS = { weight: true, loss: true } satisfies KeyList<Exclude<DistillOptions['hidden'], false | undefined>>;
const ATTENTION_TERM_KEYS = { weight: true, point: true } satisfies KeyList<Exclude<DistillOptions['attention'], false | undefined>>;
const LOGITS_TERM_KEYS = { weight: true, temperature: true } satisfies KeyList<Exclude<DistillOptions['logits'], false | undefined>>;

/** What {@link Distiller.train} takes besides the data. */
export interface DistillTrainOptions {
  steps: number;
  onStep?: (losses: StepLosses) => void;
}
const TRAIN_OPTION_KEYS = { steps: true, onStep: true } satisfies KeyList<DistillTrainOptions>;

/** Losses of one step (values before the update), by term. */
export interface StepLosses {
  step: number;
  /** The weighted sum that was minimised. */
  loss: number;
  hidden?: number;
  attention?: number;
  logits?: number;
}

type Pair = { student: string; teacher: string };

/** The number of blocks of a model, from its `layers.{i}` hook points. */
function layerCount(model: Model): number {
  return hookPoints(model).filter((name) => /^layers\.\d+$/.test(name)).length;
}

/**
 * Knowledge distillation from a frozen teacher into a student, through hooks: each step runs the
 * teacher without gradients, captures what the losses need, and updates only the student's
 * variables (plus the projection). Works for any two Tessera models with `layers.{i}` points,
 * attention or Mamba, so a Mamba student can learn an attention teacher's hidden states.
 */
export class Distiller {
  readonly teacher: Model;
  readonly student: Model;
  readonly layerMap: LayerMap;
  /** The learned student → teacher hidden projection, created on the first step when sizes differ. */
  projection?: Linear;
  private readonly options: DistillOptions;
  private readonly hiddenPairs: Pair[] = [];
  private readonly attentionPairs: Pair[] = [];
  private steps = 0;
  private prepared = false;

  constructor(options: DistillOptions) {
    checkKeys(options, DISTILL_OPTION_KEYS, 'Distiller options');
    checkKeys(options.hidden, HIDDEN_TERM_KEYS, 'Distiller options hidden');
    checkKeys(options.attention, ATTENTION_TERM_KEYS, 'Distiller options attention');
    checkKeys(options.logits, LOGITS_TERM_KEYS, 'Distiller options logits');
    this.options = options;
    this.teacher = options.teacher;
    this.student = options.student;
    if (options.teacher === options.student) throw new Error('Distiller: teacher and student must be different models');
    const studentLayers = layerCount(this.student);
    const teacherLayers = layerCount(this.teacher);
    this.layerMap = options.layerMap ?? uniformLayerMap(studentLayers, teacherLayers);
    for (const [s, t] of this.layerMap) {
      if (!(s >= 0 && s < studentLayers)) throw new Error(`layerMap: student layer ${s} does not exist (student has ${studentLayers})`);
      if (!(t >= 0 && t < teacherLayers)) throw new Error(`layerMap: teacher layer ${t} does not exist (teacher has ${teacherLayers})`);
    }
    if (options.hidden !== false) {
      if (options.matchEmbeddings !== false) this.hiddenPairs.push({ student: 'embeddings', teacher: 'embeddings' });
      for (const [s, t] of this.layerMap) this.hiddenPairs.push({ student: `layers.${s}`, teacher: `layers.${t}` });
    }
    if (options.attention !== undefined && options.attention !== false) {
      const point = options.attention.point ?? ATTENTION_TAPS.scores;
      for (const [s, t] of this.layerMap) {
        this.attentionPairs.push({ student: `layers.${s}.mixer.${point}`, teacher: `layers.${t}.mixer.${point}` });
      }
      for (const [model, side] of [[this.student, 'student'], [this.teacher, 'teacher']] as const) {
        const missing = this.attentionPairs.map((p) => p[side]).filter((n) => !hookPoints(model).includes(n));
        if (missing.length > 0) {
          throw new Error(`attention distillation: the ${side} has no point ${missing.join(', ')} (is its mixer attention?)`);
        }
      }
    }
    if (this.hiddenPairs.length + this.attentionPairs.length === 0 && !this.logitsOn) {
      throw new Error('Distiller: every loss term is off; enable hidden, attention or logits');
    }
  }

  private get logitsOn(): boolean {
    return this.options.logits !== undefined && this.options.logits !== false;
  }

  /** The variables a step updates: the student's trainable parameters and the projection's. */
  trainableVariables(): tf.Variable[] {
    const own = this.student.namedParameters().map(([, v]) => v);
    const projection = this.projection?.namedParameters().map(([, v]) => v) ?? [];
    return [...own, ...projection].filter((v) => v.trainable);
  }

  /**
   * One optimisation step on `batch` (the caller keeps owning its tensors). Needs tfjs gradients:
   * `await registerGradients()` first, or use {@link train}.
   */
  step(batch: DistillBatch): StepLosses {
    if (!gradientsRegistered()) throw new Error('Distiller.step needs tfjs gradients: await registerGradients() first (train() does it)');
    const teacher = this.runTeacher(batch);
    try {
      this.prepare(batch, teacher);
      const parts: Partial<Record<'hidden' | 'attention' | 'logits', tf.Scalar>> = {};
      let cost: tf.Scalar | null;
      try {
        cost = this.options.optimizer.minimize(() => this.studentLoss(batch, teacher, parts), true, this.trainableVariables());
      } catch (err) {
        tf.dispose(Object.values(parts)); // terms recorded before the failure
        throw err;
      }
      return this.report(this.steps++, cost!, parts);
    } finally {
      teacher.dispose();
    }
  }

  /** The losses on `batch` without updating anything (e.g. on a held-out batch). */
  evaluate(batch: DistillBatch): StepLosses {
    const teacher = this.runTeacher(batch);
    try {
      this.prepare(batch, teacher);
      const parts: Partial<Record<'hidden' | 'attention' | 'logits', tf.Scalar>> = {};
      let cost: tf.Scalar;
      try {
        cost = tf.tidy(() => this.studentLoss(batch, teacher, parts));
      } catch (err) {
        tf.dispose(Object.values(parts));
        throw err;
      }
      return this.report(this.steps, cost, parts);
    } finally {
      teacher.dispose();
    }
  }

  /**
   * Run `steps` steps and return their losses. `data` is a list of batches (cycled; the caller owns
   * them) or a function of the step index returning a fresh batch (disposed after its step).
   */
  async train(
    data: readonly DistillBatch[] | ((step: number) => DistillBatch),
    options: DistillTrainOptions,
  ): Promise<StepLosses[]> {
    checkKeys(options, TRAIN_OPTION_KEYS, 'Distiller.train options');
    await registerGradients();
    if (Array.isArray(data) && data.length === 0) throw new Error('Distiller.train: no batches given');
    const history: StepLosses[] = [];
    for (let i = 0; i < options.steps; i++) {
      const fresh = typeof data === 'function';
      const batch = fresh ? (data as (step: number) => DistillBatch)(i) : (data as readonly DistillBatch[])[i % data.length]!;
      try {
        history.push(this.step(batch));
      } finally {
        if (fresh) tf.dispose([batch.inputIds, batch.attentionMask, batch.tokenTypeIds].filter((t) => t !== undefined));
      }
      options.onStep?.(history[history.length - 1]!);
    }
    return history;
  }

  /** Free the projection (the models and the optimizer stay the caller's). */
  dispose(): void {
    this.projection?.dispose();
    this.projection = undefined;
  }

  /** Teacher activations and logits, outside any gradient tape. */
  private runTeacher(batch: DistillBatch): { cache: ActivationCache; logits?: tf.Tensor; dispose(): void } {
    const names = [...this.hiddenPairs, ...this.attentionPairs].map((p) => p.teacher);
    const { output, cache } = runWithCache(this.teacher, batch.inputIds, { ...forwardOptions(batch), names });
    const tensors = Object.values(output as object).flat().filter((v): v is tf.Tensor => v instanceof tf.Tensor);
    let logits: tf.Tensor | undefined;
    if (this.logitsOn) {
      logits = (output as { logits?: tf.Tensor }).logits;
      if (logits === undefined) {
        tf.dispose(tensors);
        cache.dispose();
        throw new Error('logits distillation: the teacher produces no logits (use a causal LM teacher, or turn logits off)');
      }
    }
    return {
      cache,
      logits,
      dispose: () => {
        tf.dispose(tensors);
        cache.dispose();
      },
    };
  }

  /** The weighted loss of the student on `batch`; records each term in `parts` (kept scalars). */
  private studentLoss(
    batch: DistillBatch,
    teacher: { cache: ActivationCache; logits?: tf.Tensor },
    parts: Partial<Record<'hidden' | 'attention' | 'logits', tf.Scalar>>,
  ): tf.Scalar {
    const names = [...this.hiddenPairs, ...this.attentionPairs].map((p) => p.student);
    const { output, cache } = runWithCache(this.student, batch.inputIds, { ...forwardOptions(batch), names });
    try {
      const mask = batch.attentionMask;
      const terms: tf.Scalar[] = [];
      const hidden = this.options.hidden === false ? undefined : this.options.hidden;
      if (this.hiddenPairs.length > 0) {
        const lossFn = hidden?.loss === 'cosine' ? hiddenCosineLoss : hiddenMseLoss;
        const losses = this.hiddenPairs.map((p) => lossFn(this.project(cache.get(p.student)), teacher.cache.get(p.teacher), { mask }));
        parts.hidden = tf.keep(tf.addN(losses).div(losses.length) as tf.Scalar);
        terms.push(parts.hidden.mul(hidden?.weight ?? 1));
      }
      if (this.attentionPairs.length > 0) {
        const options = this.options.attention === false ? undefined : this.options.attention;
        const losses = this.attentionPairs.map((p) => attentionLoss(cache.get(p.student), teacher.cache.get(p.teacher), { mask }));
        parts.attention = tf.keep(tf.addN(losses).div(losses.length) as tf.Scalar);
        terms.push(parts.attention.mul(options?.weight ?? 1));
      }
      if (this.logitsOn && teacher.logits !== undefined) {
        const options = this.options.logits === false ? undefined : this.options.logits;
        const studentLogits = (output as { logits?: tf.Tensor }).logits;
        if (studentLogits === undefined) throw new Error('logits distillation: the student produces no logits (use a causal LM student)');
        parts.logits = tf.keep(klDivergenceLoss(studentLogits, teacher.logits, { mask, temperature: options?.temperature ?? 2 }));
        terms.push(parts.logits.mul(options?.weight ?? 1));
      }
      return tf.addN(terms) as tf.Scalar;
    } finally {
      // Captures are clones; the tape keeps its own copies of what backprop needs.
      cache.dispose();
    }
  }

  /** Student hidden states in the teacher's width. */
  private project(hidden: tf.Tensor): tf.Tensor {
    return this.projection === undefined ? hidden : this.projection.call(hidden, createContext());
  }

  /**
   * Before the first step: one student forward outside the tape, to create the projection once
   * the hidden sizes are known and to reject mismatches (missing logits, different vocabularies or
   * attention shapes) with a clear error. Inside the tape they would also leak tfjs's saved
   * tensors, which tfjs does not free when the taped function throws.
   */
  private prepare(batch: DistillBatch, teacher: { cache: ActivationCache; logits?: tf.Tensor }): void {
    if (this.prepared) return;
    const names = [...this.hiddenPairs, ...this.attentionPairs].map((p) => p.student);
    const { output, cache } = runWithCache(this.student, batch.inputIds, { ...forwardOptions(batch), names });
    try {
      if (teacher.logits !== undefined) {
        const logits = (output as { logits?: tf.Tensor }).logits;
        if (logits === undefined) throw new Error('logits distillation: the student produces no logits (use a causal LM student)');
        if (!tf.util.arraysEqual(logits.shape, teacher.logits.shape)) {
          throw new Error(`logits distillation: student logits [${logits.shape}] and teacher logits [${teacher.logits.shape}] differ (the vocabularies must match)`);
        }
      }
      for (const pair of this.attentionPairs) {
        const [s, t] = [cache.get(pair.student).shape, teacher.cache.get(pair.teacher).shape];
        if (!tf.util.arraysEqual(s, t)) {
          throw new Error(`attention distillation: ${pair.student} [${s}] and teacher ${pair.teacher} [${t}] differ (head counts must match)`);
        }
      }
      if (this.hiddenPairs.length > 0) {
        const pair = this.hiddenPairs[0]!;
        const studentSize = cache.get(pair.student).shape.at(-1)!;
        const teacherSize = teacher.cache.get(pair.teacher).shape.at(-1)!;
        if (studentSize !== teacherSize) {
          if (this.options.projection === false) {
            throw new Error(`hidden sizes differ (student ${studentSize}, teacher ${teacherSize}) and projection is off`);
          }
          const projection = new Linear(studentSize, teacherSize, { bias: true });
          // Variance-preserving start, so projected states begin on the teacher's scale.
          const start = tf.randomNormal([teacherSize, studentSize], 0, 1 / Math.sqrt(studentSize), 'float32', this.options.seed);
          projection.weight.assign(start);
          start.dispose(); // assign shares the data; the tensor itself would stay counted
          this.projection = projection;
        }
      }
      this.prepared = true;
    } finally {
      tf.dispose(Object.values(output as object).flat().filter((v): v is tf.Tensor => v instanceof tf.Tensor));
      cache.dispose();
    }
  }

  private report(step: number, cost: tf.Scalar, parts: Partial<Record<'hidden' | 'attention' | 'logits', tf.Scalar>>): StepLosses {
    const losses: StepLosses = { step, loss: cost.dataSync()[0]! };
    for (const [name, value] of Object.entries(parts) as ['hidden' | 'attention' | 'logits', tf.Scalar][]) {
      losses[name] = value.dataSync()[0]!;
    }
    tf.dispose([cost, ...Object.values(parts)]);
    return losses;
  }
}

function forwardOptions(batch: DistillBatch): { attentionMask?: tf.Tensor2D; tokenTypeIds?: tf.Tensor2D } {
  const options: { attentionMask?: tf.Tensor2D; tokenTypeIds?: tf.Tensor2D } = {};
  if (batch.attentionMask !== undefined) options.attentionMask = batch.attentionMask;
  if (batch.tokenTypeIds !== undefined) options.tokenTypeIds = batch.tokenTypeIds;
  return options;
}
