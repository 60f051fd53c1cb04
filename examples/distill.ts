/**
 * Distillation, at two sizes.
 *
 * `--size tiny` (the default): the bert-tiny fixture (2 layers, the teacher) into a freshly
 * initialised 1-layer BERT, TinyBERT-style: the student's embeddings and its layer 0 learn the
 * teacher's embeddings and layer 1 (hidden-state MSE) and its attention scores, on generated
 * sentences.
 *
 *   npm run example:distill -- --steps 150
 *
 * `--size small`: issue 14's sizes, the ones the train benchmark times (`bench/train-sizes.ts`): a
 * Llama-small teacher (768 × 12 layers, random weights unless `--teacher DIR` names a checkpoint
 * folder) into a Llama student (512 × 4 layers) or, with `--student mamba`, a Mamba student; KL on
 * the logits at temperature 2 plus hidden-state MSE of student layer i against teacher layer 3i + 2
 * through a learned 512 → 768 projection, with `adam()`.
 *
 *   npm run example:distill -- --size small --steps 20 --batch 4 --length 128 [--student mamba]
 *       [--teacher DIR] [--data FILE] [--lr 1e-4] [--repeat-batch]
 *
 * Progress is a bar on a terminal (stderr) and one line per tenth of the run otherwise. The last
 * line printed is JSON: the held-out loss before and after training (`initialLoss`, `finalLoss`),
 * and for `small` also the step rate, each step's loss and the tensor count's growth per step.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { Command, InvalidArgumentError, Option } from 'commander';
import { SingleBar } from 'cli-progress';
import {
  AutoCausalLM, AutoEncoder, AutoTokenizer, Distiller, activeBackend, adam, initBackend, type DistillBatch, type StepLosses,
} from '../src/index.js';
import { trainLayerMap, trainSizes } from '../bench/train-sizes.js';

function positiveInteger(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive integer');
  return n;
}
function positiveNumber(value: string): number {
  const n = Number(value);
  if (!(n > 0) || !Number.isFinite(n)) throw new InvalidArgumentError('expected a positive number');
  return n;
}
const program = new Command('example:distill')
  .description('Distil a teacher into a smaller student (tiny: the bert-tiny fixture; small: issue 14\'s real sizes).')
  .addOption(new Option('--size <size>', 'tiny: bert-tiny fixture -> 1-layer BERT; small: Llama-small -> 512 x 4 student').choices(['tiny', 'small']).default('tiny'))
  .option('--steps <n>', 'training steps (default tiny 150, small 20)', positiveInteger)
  .option('--batch <n>', 'sequences per batch (default tiny 8, small 4)', positiveInteger)
  .option('--length <n>', 'small: tokens per sequence (default 128)', positiveInteger)
  .addOption(new Option('--student <kind>', 'small: the student architecture').choices(['llama', 'mamba']).default('llama'))
  .option('--teacher <dir>', 'small: a causal-LM checkpoint folder as the teacher (default: random weights)')
  .option('--data <file>', 'small: train on this text file (the teacher folder\'s tokenizer, else UTF-8 bytes) instead of generated ids')
  .option('--lr <rate>', 'small: Adam learning rate (default 1e-4)', positiveNumber)
  .option('--repeat-batch', 'small: train on one fixed batch, which is also the held-out batch (shows the loss falling)')
  .parse();
const opts = program.opts<{
  size: 'tiny' | 'small'; steps?: number; batch?: number; length?: number; student: 'llama' | 'mamba';
  teacher?: string; data?: string; lr?: number; repeatBatch?: boolean;
}>();
if (opts.size === 'tiny') {
  const smallOnly: string[] = (['length', 'teacher', 'data', 'lr', 'repeatBatch'] as const).filter((k) => opts[k] !== undefined)
    .map((k) => (k === 'repeatBatch' ? 'repeat-batch' : k));
  if (program.getOptionValueSource('student') === 'cli') smallOnly.push('student');
  if (smallOnly.length > 0) program.error(`error: --${smallOnly.join(', --')} only appl${smallOnly.length === 1 ? 'ies' : 'y'} to --size small`);
}

// A seeded generator keeps runs reproducible.
let seed = 42;
function random(): number {
  seed = (seed * 1664525 + 1013904223) % 2 ** 32;
  return seed / 2 ** 32;
}

/**
 * Reports progress: a bar on stderr when it is a terminal, otherwise a line on stdout for the first
 * step, every tenth of the run and the last. `tokens` per step give the rate.
 */
function progress(total: number, tokens: number, describe: (s: StepLosses) => string) {
  const bar = process.stderr.isTTY
    ? new SingleBar({ format: 'distil {bar} {value}/{total} | {losses} | {rate} tok/s | ETA {eta_formatted}', stream: process.stderr, hideCursor: true })
    : undefined;
  bar?.start(total, 0, { losses: '', rate: '-' });
  const every = Math.max(1, Math.floor(total / 10));
  let last = performance.now();
  const seconds: number[] = [];
  return {
    seconds,
    onStep(s: StepLosses): void {
      const now = performance.now();
      seconds.push((now - last) / 1000);
      last = now;
      const rate = (tokens / seconds[seconds.length - 1]!).toFixed(1);
      if (bar !== undefined) bar.update(s.step + 1, { losses: describe(s), rate });
      else if (s.step === 0 || (s.step + 1) % every === 0 || s.step + 1 === total) {
        console.log(`step ${s.step + 1}/${total}  ${describe(s)}  ${rate} tok/s`);
      }
    },
    stop: () => bar?.stop(),
  };
}

/** The bert-tiny fixture into a 1-layer BERT on generated sentences (the default run). */
async function tiny(): Promise<Record<string, unknown>> {
  const steps = opts.steps ?? 150;
  const batchSize = opts.batch ?? 8;
  const dir = join(import.meta.dirname, '../tests/fixtures/bert-tiny');
  const teacher = await AutoEncoder.fromDir(dir);
  const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
  const student = AutoEncoder.fromConfig({ ...config, num_hidden_layers: 1 });

  // Generated text: random sentences over the whole words of the teacher's WordPiece vocabulary,
  // so tokenising is a lookup.
  const vocab = readFileSync(join(dir, 'vocab.txt'), 'utf8').split('\n');
  const ids = new Map(vocab.map((token, id) => [token, id]));
  const words = vocab.filter((token) => /^[a-z]{2,}$/.test(token));
  const sentence = (): string => {
    const length = 4 + Math.floor(random() * 10);
    return Array.from({ length }, () => words[Math.floor(random() * words.length)]).join(' ');
  };
  const tokenize = (text: string): number[] =>
    [ids.get('[CLS]')!, ...text.split(' ').map((w) => ids.get(w) ?? ids.get('[UNK]')!), ids.get('[SEP]')!];
  /** A right-padded batch of generated sentences with its attention mask. */
  const makeBatch = (): DistillBatch => {
    const rows = Array.from({ length: batchSize }, () => tokenize(sentence()));
    const width = Math.max(...rows.map((r) => r.length));
    const pad = (r: number[], v: (i: number) => number) => Array.from({ length: width }, (_, i) => (i < r.length ? v(i) : 0));
    return {
      inputIds: tf.tensor2d(rows.map((r) => pad(r, (i) => r[i]!)), undefined, 'int32'),
      attentionMask: tf.tensor2d(rows.map((r) => pad(r, () => 1)), undefined, 'int32'),
    };
  };

  const optimizer = tf.train.adam(5e-3);
  const distiller = new Distiller({
    teacher,
    student,
    optimizer,
    hidden: { loss: 'mse' },
    attention: { point: 'scores', weight: 0.1 },
  });
  console.log(`teacher: ${teacher.layers.length} layers, student: ${student.layers.length}; layer map ${JSON.stringify(distiller.layerMap)}`);

  const heldOut = makeBatch();
  const initial = distiller.evaluate(heldOut);
  // Sentences vary in length; the rate counts the batch's nominal ~10 tokens per sentence.
  const report = progress(steps, batchSize * 10, (s) => `loss ${s.loss.toFixed(4)}  hidden ${s.hidden!.toFixed(4)}  attention ${s.attention!.toFixed(4)}`);
  await distiller.train(makeBatch, { steps, onStep: report.onStep });
  report.stop();
  const final = distiller.evaluate(heldOut);

  tf.dispose([heldOut.inputIds, heldOut.attentionMask!]);
  distiller.dispose();
  optimizer.dispose();
  teacher.dispose();
  student.dispose();
  return { initialLoss: initial.loss, finalLoss: final.loss, steps };
}

/**
 * The tokens of `--data FILE` a `small` run trains on: the teacher folder's tokenizer if one is
 * given, else UTF-8 bytes (ids below 256, which fit any vocabulary of 256 or more).
 */
async function fileTokens(file: string, length: number): Promise<Int32Array> {
  const text = readFileSync(file, 'utf8');
  let ids: number[];
  if (opts.teacher !== undefined) {
    const tokenizer = await AutoTokenizer.fromDir(opts.teacher);
    const encoding = tokenizer.encode([text], { addSpecialTokens: false });
    tf.dispose([encoding.inputIds, encoding.attentionMask, encoding.tokenTypeIds]);
    ids = encoding.ids[0]!;
  } else {
    ids = [...Buffer.from(text, 'utf8')];
  }
  if (ids.length < length) throw new Error(`--data ${file}: ${ids.length} tokens, fewer than one sequence (--length ${length})`);
  return Int32Array.from(ids);
}

/** Issue 14's sizes: Llama-small into a Llama or Mamba student, on generated ids or a text file. */
async function small(): Promise<Record<string, unknown>> {
  const steps = opts.steps ?? 20;
  const sizes = trainSizes(false);
  const [batch, length] = [opts.batch ?? sizes.batch[0], opts.length ?? sizes.batch[1]];
  if (length < 2) program.error('--length must be at least 2 (the logits are compared per position)');
  // The file first: a problem with it shows before minutes of building models.
  const fromFile = opts.data === undefined ? undefined : await fileTokens(opts.data, length);
  const teacher = opts.teacher !== undefined ? await AutoCausalLM.fromDir(opts.teacher) : AutoCausalLM.fromConfig(sizes.teacher, { seed: 2 });
  const vocab = teacher.embeddings.word.weight.shape[0]!;
  const student = AutoCausalLM.fromConfig({ ...(opts.student === 'mamba' ? sizes.mamba : sizes.student), vocab_size: vocab }, { seed: 1 });
  const optimizer = adam(opts.lr ?? 1e-4);
  const distiller = new Distiller({
    teacher,
    student,
    optimizer,
    logits: { temperature: 2, weight: 1 },
    hidden: { loss: 'mse', weight: 1 },
    matchEmbeddings: false,
    // A checkpoint teacher may have another depth: then the uniform map (3i + 2 for 12 layers).
    layerMap: opts.teacher === undefined ? trainLayerMap(student.layers.length) : undefined,
  });
  const millions = (n: number) => `${(n / 1e6).toFixed(1)}M`;
  console.log(
    `teacher: ${opts.teacher ?? 'random Llama-small'} (${millions(teacher.parameterCount())} parameters, ${teacher.layers.length} layers); ` +
      `student: ${opts.student} (${millions(student.parameterCount())}, ${student.layers.length} layers); ` +
      `layer map ${JSON.stringify(distiller.layerMap)}; backend ${activeBackend()}; batch ${batch}x${length}`,
  );

  // Seeded random ids or the file's tokens, cut into consecutive windows (wrapping around); the
  // held-out batch comes first.
  const stream = fromFile ?? Int32Array.from({ length: (steps + 1) * batch * length }, () => Math.floor(random() * vocab));
  const outside = fromFile?.find((id) => id >= vocab);
  if (outside !== undefined) throw new Error(`--data ${opts.data}: token id ${outside} is outside the teacher's vocabulary of ${vocab}`);
  let offset = 0;
  const window = (): number[] => {
    const row = Array.from({ length }, (_, i) => stream[(offset + i) % stream.length]!);
    offset = (offset + length) % stream.length;
    return row;
  };
  const makeBatch = (): DistillBatch => ({ inputIds: tf.tensor2d(Array.from({ length: batch }, window), [batch, length], 'int32') });

  const heldOut = makeBatch();
  const initial = distiller.evaluate(heldOut);
  const losses: number[] = [];
  const tensors: number[] = [];
  const report = progress(steps, batch * length, (s) => `loss ${s.loss.toFixed(4)} (logits ${s.logits!.toFixed(4)}, hidden ${s.hidden!.toFixed(4)})`);
  await distiller.train(opts.repeatBatch ? [heldOut] : makeBatch, {
    steps,
    onStep: (s) => {
      report.onStep(s);
      losses.push(s.loss);
      tensors.push(tf.memory().numTensors);
    },
  });
  report.stop();
  const final = distiller.evaluate(heldOut);
  // The first step also builds the optimiser's state and the warm caches: the rate leaves it out.
  const timed = report.seconds.length > 1 ? report.seconds.slice(1) : report.seconds;
  const tokPerSecond = (timed.length * batch * length) / timed.reduce((a, b) => a + b, 0);
  console.log(`${tokPerSecond.toFixed(1)} tok/s (${(timed.reduce((a, b) => a + b, 0) / timed.length).toFixed(2)} s per step after the first)`);

  heldOut.inputIds.dispose();
  distiller.dispose();
  optimizer.dispose();
  teacher.dispose();
  student.dispose();
  return {
    size: 'small',
    student: opts.student,
    teacher: opts.teacher ?? 'random',
    data: opts.data ?? 'generated',
    backend: activeBackend(),
    steps,
    batch,
    length,
    initialLoss: initial.loss,
    finalLoss: final.loss,
    losses,
    tokPerSecond,
    firstStepSeconds: report.seconds[0],
    // Live tensors after the last step minus after the first (which creates the Adam state): 0 when nothing leaks.
    tensorGrowth: tensors[tensors.length - 1]! - tensors[0]!,
  };
}

await initBackend({ verbose: true });
try {
  console.log(JSON.stringify(opts.size === 'small' ? await small() : await tiny()));
} catch (err) {
  program.error(`error: ${(err as Error).message}`);
}
