/**
 * Distil the bert-tiny fixture (2 layers, the teacher) into a freshly initialised 1-layer BERT,
 * TinyBERT-style: the student's embeddings and its layer 0 learn the teacher's embeddings and
 * layer 1 (hidden-state MSE) and its attention scores, on generated sentences.
 *
 *   npm run example:distill -- --steps 150
 *
 * The last line printed is JSON `{"initialLoss", "finalLoss", "steps"}`: the loss on a held-out
 * batch before and after training.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { AutoEncoder, Distiller, initBackend, type DistillBatch } from '../src/index.js';

function option(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  const value = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive integer`);
  return value;
}
const steps = option('--steps', 150);
const batchSize = option('--batch', 8);

await initBackend();
const dir = join(import.meta.dirname, '../tests/fixtures/bert-tiny');
const teacher = await AutoEncoder.fromDir(dir);
const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
const student = AutoEncoder.fromConfig({ ...config, num_hidden_layers: 1 });

// Generated text: random sentences over the whole words of the teacher's WordPiece vocabulary,
// so tokenising is a lookup. A seeded generator keeps runs reproducible.
const vocab = readFileSync(join(dir, 'vocab.txt'), 'utf8').split('\n');
const ids = new Map(vocab.map((token, id) => [token, id]));
const words = vocab.filter((token) => /^[a-z]{2,}$/.test(token));
let seed = 42;
function random(): number {
  seed = (seed * 1664525 + 1013904223) % 2 ** 32;
  return seed / 2 ** 32;
}
function sentence(): string {
  const length = 4 + Math.floor(random() * 10);
  return Array.from({ length }, () => words[Math.floor(random() * words.length)]).join(' ');
}
function tokenize(text: string): number[] {
  return [ids.get('[CLS]')!, ...text.split(' ').map((w) => ids.get(w) ?? ids.get('[UNK]')!), ids.get('[SEP]')!];
}
/** A right-padded batch of generated sentences with its attention mask. */
function makeBatch(): DistillBatch {
  const rows = Array.from({ length: batchSize }, () => tokenize(sentence()));
  const width = Math.max(...rows.map((r) => r.length));
  const pad = (r: number[], v: (i: number) => number) => Array.from({ length: width }, (_, i) => (i < r.length ? v(i) : 0));
  return {
    inputIds: tf.tensor2d(rows.map((r) => pad(r, (i) => r[i]!)), undefined, 'int32'),
    attentionMask: tf.tensor2d(rows.map((r) => pad(r, () => 1)), undefined, 'int32'),
  };
}

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
const every = Math.max(1, Math.floor(steps / 10));
await distiller.train(makeBatch, {
  steps,
  onStep: (s) => {
    if ((s.step + 1) % every === 0 || s.step === 0) {
      console.log(`step ${s.step + 1}/${steps}  loss ${s.loss.toFixed(4)}  hidden ${s.hidden!.toFixed(4)}  attention ${s.attention!.toFixed(4)}`);
    }
  },
});
const final = distiller.evaluate(heldOut);

tf.dispose([heldOut.inputIds, heldOut.attentionMask!]);
distiller.dispose();
optimizer.dispose();
teacher.dispose();
student.dispose();
console.log(JSON.stringify({ initialLoss: initial.loss, finalLoss: final.loss, steps }));
