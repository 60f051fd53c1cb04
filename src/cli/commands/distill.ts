/**
 * `tessera distill CONFIG.json`: distil a teacher into a student with the {@link Distiller} on
 * the lines of a text file, then save the student. Progress on stderr; the last line on stdout is
 * a JSON summary.
 */
import { existsSync, readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import type * as tfTypes from '@tensorflow/tfjs-core';
import type { Command } from 'commander';
import type { Distiller, DistillBatch, DistillOptions, SaveFormat, TransformerModel } from '../../index.js';
import { checkKeys, type KeyList } from '../../util/options.js';
import { CliError } from '../errors.js';
import { startBackend, withHubFlags, type HubFlags } from '../flags.js';
import type { LoadableKind } from '../model.js';

/** The JSON file `tessera distill` reads. Relative paths are relative to the file's folder. */
export interface DistillFile {
  /** Model folder or hub name. */
  teacher: string;
  /** Model folder or hub name, or a config to build a fresh student from (HF-style or a Tessera hybrid spec). */
  student: string | Record<string, unknown>;
  /** Text file: one training example per non-empty line, tokenized with the teacher's tokenizer. */
  data: string;
  /** Folder or hub name of the tokenizer, when the teacher's folder has none. Default: the teacher's. */
  tokenizer?: string;
  steps: number;
  /** Lines per step. Default 8. */
  batchSize?: number;
  /** Adam's learning rate. Default 1e-3. */
  learningRate?: number;
  /** Longest example in tokens; longer lines are cut. Default 128. */
  maxLength?: number;
  /** The Distiller's loss terms; default hidden-state MSE only. */
  losses?: Pick<DistillOptions, 'hidden' | 'attention' | 'logits'>;
  /** Student layer -> teacher layer pairs. Default: uniform. */
  layerMap?: [number, number][];
  /** Also match the embedding outputs. Default true. */
  matchEmbeddings?: boolean;
  /** Seed of a fresh student's initial weights. */
  seed?: number;
  /** Where the trained student is saved; none when absent. */
  output?: string;
  /** Format of the saved student. Default 'tessera'. */
  format?: SaveFormat;
}

const FILE_KEYS = {
  teacher: true, student: true, data: true, tokenizer: true, steps: true, batchSize: true, learningRate: true, maxLength: true, losses: true,
  layerMap: true, matchEmbeddings: true, seed: true, output: true, format: true,
} satisfies KeyList<DistillFile>;
const LOSS_KEYS = { hidden: true, attention: true, logits: true } satisfies KeyList<NonNullable<DistillFile['losses']>>;

/** What the last line of `tessera distill` holds. */
export interface DistillSummary {
  steps: number;
  /** The loss on the first batch before training and after it. */
  initialLoss: number;
  finalLoss: number;
  /** Non-padding tokens per second through the training steps. */
  tokensPerSecond: number;
  seconds: number;
  /** Folder the student was saved to, or null. */
  saved: string | null;
}

function fail(file: string, message: string): never {
  throw new CliError(`${file}: ${message}`);
}

/** Read and check the config file; paths come back resolved. */
export async function readDistillFile(path: string): Promise<DistillFile> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(path, 'utf8'));
  } catch (err) {
    fail(path, (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : `not valid JSON (${(err as Error).message})`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) fail(path, 'expected a JSON object');
  checkKeys(parsed, FILE_KEYS, path);
  const c = parsed as DistillFile;
  checkKeys(c.losses, LOSS_KEYS, `${path} losses`);
  const isInt = (v: unknown, min: number) => typeof v === 'number' && Number.isInteger(v) && v >= min;
  if (typeof c.teacher !== 'string' || c.teacher === '') fail(path, "'teacher' must be a model folder or hub name");
  if (typeof c.student !== 'string' && (typeof c.student !== 'object' || c.student === null || Array.isArray(c.student))) {
    fail(path, "'student' must be a model folder, a hub name or a config object");
  }
  if (typeof c.data !== 'string' || c.data === '') fail(path, "'data' must be the path of a text file");
  if (!isInt(c.steps, 1)) fail(path, `'steps' must be a positive integer, got ${JSON.stringify(c.steps)}`);
  if (c.batchSize !== undefined && !isInt(c.batchSize, 1)) fail(path, `'batchSize' must be a positive integer, got ${JSON.stringify(c.batchSize)}`);
  if (c.maxLength !== undefined && !isInt(c.maxLength, 2)) fail(path, `'maxLength' must be an integer ≥ 2, got ${JSON.stringify(c.maxLength)}`);
  if (c.learningRate !== undefined && !(typeof c.learningRate === 'number' && c.learningRate > 0)) {
    fail(path, `'learningRate' must be a number above 0, got ${JSON.stringify(c.learningRate)}`);
  }
  if (c.format !== undefined && c.format !== 'tessera' && c.format !== 'hf') fail(path, `'format' must be 'tessera' or 'hf', got ${JSON.stringify(c.format)}`);
  if (c.output !== undefined && typeof c.output !== 'string') fail(path, "'output' must be a folder path");
  if (c.tokenizer !== undefined && (typeof c.tokenizer !== 'string' || c.tokenizer === '')) fail(path, "'tokenizer' must be a folder or hub name");
  const base = dirname(resolve(path));
  // A model given as a relative path that exists next to the config is that folder; otherwise it is a hub name.
  const local = (p: string) => (isAbsolute(p) ? p : resolve(base, p));
  const model = (p: string) => (existsSync(local(p)) ? local(p) : p);
  return {
    ...c,
    teacher: model(c.teacher),
    student: typeof c.student === 'string' ? model(c.student) : c.student,
    tokenizer: c.tokenizer === undefined ? undefined : model(c.tokenizer),
    data: local(c.data),
    output: c.output === undefined ? undefined : local(c.output),
  };
}

async function readLines(path: string): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new CliError(`data file ${path}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
  }
  const lines = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '');
  if (lines.length === 0) throw new CliError(`data file ${path} has no non-empty line to train on`);
  return lines;
}

export function distillCommand(program: Command): void {
  withHubFlags(
    program
      .command('distill')
      .description('distil a teacher into a student as a JSON config says; prints a JSON summary last')
      .argument('<config>', 'JSON file: teacher, student, data, steps, batchSize, learningRate, losses, output (see docs/cli.md)'),
  ).action(async (configPath: string, flags: HubFlags, cmd: Command) => {
    const c = await readDistillFile(configPath);
    // saveModel refuses a non-empty folder for HF output: say so before training, not after.
    if (c.format === 'hf' && c.output !== undefined && existsSync(c.output) && readdirSync(c.output).length > 0) {
      throw new CliError(`${configPath}: output folder ${c.output} is not empty; HF output needs an empty or new folder`);
    }
    const { LOADERS, folderConfig, kindFor, modelFolder } = await import('../model.js');
    const { AutoTokenizer, Distiller, saveModel } = await import('../../index.js');
    const tf = await import('@tensorflow/tfjs-core');
    const { StepProgress } = await import('../progress.js');
    const lines = await readLines(c.data);
    const teacherDir = await modelFolder(c.teacher, flags, { weights: true, tokenizer: true });
    const teacherInfo = await folderConfig(teacherDir);
    // Logits need LM heads on both sides; otherwise hidden states (an encoder for BERT) suffice.
    const logits = c.losses?.logits !== undefined && c.losses.logits !== false;
    const kind: LoadableKind | undefined = kindFor(teacherInfo.kinds, logits ? ['causal-lm'] : ['encoder', 'decoder']);
    if (kind === undefined) throw new CliError(`teacher ${c.teacher}: ${teacherInfo.architecture} models have no ${logits ? 'LM head for the logits loss' : 'hidden states to distil'}`);
    const studentDir = typeof c.student === 'string' ? await modelFolder(c.student, flags, { weights: true, tokenizer: false }) : undefined;

    await startBackend(cmd);
    const tokenizerDir = c.tokenizer === undefined ? teacherDir : await modelFolder(c.tokenizer, flags, { weights: false, tokenizer: true });
    const tokenizer = await AutoTokenizer.fromDir(tokenizerDir);
    const models: TransformerModel[] = [];
    let distiller: Distiller | undefined;
    let optimizer: tfTypes.Optimizer | undefined;
    let evalBatch: DistillBatch | undefined;
    const progress = new StepProgress('distill', c.steps);
    try {
      const teacher = await LOADERS[kind].fromDir(teacherDir);
      models.push(teacher);
      const student = studentDir !== undefined ? await LOADERS[kind].fromDir(studentDir) : LOADERS[kind].fromConfig(c.student as Record<string, unknown>, { seed: c.seed });
      models.push(student);
      optimizer = tf.train.adam(c.learningRate ?? 1e-3);
      distiller = new Distiller({
        teacher,
        student,
        optimizer,
        ...(c.losses ?? {}),
        ...(c.layerMap !== undefined ? { layerMap: c.layerMap } : {}),
        ...(c.matchEmbeddings !== undefined ? { matchEmbeddings: c.matchEmbeddings } : {}),
        ...(c.seed !== undefined ? { seed: c.seed } : {}),
      });

      const batchSize = c.batchSize ?? 8;
      /** Step `step`'s lines (cycling through the file) and how many real tokens they hold. */
      const batchAt = (step: number): { batch: DistillBatch; count: number } => {
        const rows = Array.from({ length: Math.min(batchSize, lines.length) }, (_, j) => lines[(step * batchSize + j) % lines.length]!);
        const enc = tokenizer.encode(rows, { padding: true, truncation: true, maxLength: c.maxLength ?? 128 });
        const count = (enc.attentionMask.dataSync() as Int32Array).reduce((a, b) => a + b, 0);
        if (kind === 'encoder') return { batch: { inputIds: enc.inputIds, attentionMask: enc.attentionMask, tokenTypeIds: enc.tokenTypeIds }, count };
        enc.tokenTypeIds.dispose(); // segment ids mean nothing to a decoder
        return { batch: { inputIds: enc.inputIds, attentionMask: enc.attentionMask }, count };
      };
      evalBatch = batchAt(0).batch;
      const initialLoss = distiller.evaluate(evalBatch).loss;
      let tokens = 0;
      const started = Date.now();
      await distiller.train(
        (step) => {
          const { batch, count } = batchAt(step);
          tokens += count;
          return batch;
        },
        { steps: c.steps, onStep: (s) => progress.update(s.step + 1, `loss ${s.loss.toFixed(4)}`) },
      );
      const seconds = (Date.now() - started) / 1000;
      progress.stop();
      const finalLoss = distiller.evaluate(evalBatch).loss;
      // An HF folder carries the tokenizer the student was trained with, so it loads as a pipeline.
      if (c.output !== undefined) await saveModel(student, c.output, c.format === 'hf' ? { format: 'hf', tokenizer: tokenizerDir } : { format: 'tessera' });
      const summary: DistillSummary = {
        steps: c.steps,
        initialLoss,
        finalLoss,
        tokensPerSecond: tokens / Math.max(seconds, 1e-3),
        seconds,
        saved: c.output ?? null,
      };
      process.stdout.write(`${JSON.stringify(summary)}\n`);
    } finally {
      progress.stop();
      if (evalBatch !== undefined) tf.dispose([evalBatch.inputIds, evalBatch.attentionMask, evalBatch.tokenTypeIds].filter((t) => t !== undefined));
      distiller?.dispose();
      optimizer?.dispose();
      for (const m of models) m.dispose();
    }
  });
}
