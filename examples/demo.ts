/**
 * `npm run demo`: load the bundled tiny checkpoints offline and show what Tessera computes.
 * The models are the test fixtures (random weights, so the tokens mean nothing; the numbers
 * match Hugging Face's PyTorch code to 1e-4).
 */
import 'reflect-metadata';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { AutoCausalLM, AutoEncoder, disposeOutput, initBackend } from '../src/index.js';

const fixtures = join(import.meta.dirname, '..', 'tests', 'fixtures');
const backend = await initBackend({ verbose: true });
console.log(`Tessera demo on the '${backend}' backend (tfjs ${tf.version_core})\n`);

const fmt = (xs: ArrayLike<number>) => Array.from(xs, (x) => x.toFixed(4)).join(', ');

const bert = await AutoEncoder.fromDir(join(fixtures, 'bert-tiny'));
{
  const inputIds = tf.tensor2d([[2, 45, 67, 89, 3]], undefined, 'int32');
  const t0 = performance.now();
  const out = bert.forward(inputIds);
  const pooled = await out.pooledOutput!.data();
  console.log(`bert-tiny  (${bert.parameterCount()} params): ${bert.layers.length} layers`);
  console.log(`  lastHiddenState [${out.lastHiddenState.shape}], pooledOutput[0, :4] = ${fmt(pooled.subarray(0, 4))}  (${(performance.now() - t0).toFixed(1)} ms)`);
  disposeOutput(out);
  inputIds.dispose();
}

for (const name of ['llama-tiny', 'mamba-tiny']) {
  const lm = await AutoCausalLM.fromDir(join(fixtures, name));
  const prompt = [[1, 17, 42, 99, 7]];
  const t0 = performance.now();
  const tokens = [...prompt[0]!];
  for (let step = 0; step < 8; step++) {
    const inputIds = tf.tensor2d([tokens], undefined, 'int32');
    const out = lm.forward(inputIds);
    const next = tf.tidy(() => out.logits.slice([0, tokens.length - 1, 0], [1, 1, -1]).reshape([-1]).argMax().dataSync()[0]!);
    if (step === 0) {
      const firstLogits = out.logits.slice([0, tokens.length - 1, 0], [1, 1, 4]);
      const first = firstLogits.dataSync();
      firstLogits.dispose();
      console.log(`${name} (${lm.parameterCount()} params): logits [${out.logits.shape}], last position [:4] = ${fmt(first)}`);
    }
    tokens.push(next);
    disposeOutput(out);
    inputIds.dispose();
  }
  console.log(`  greedy continuation of [${prompt[0]}]: [${tokens.slice(prompt[0]!.length)}]  (${(performance.now() - t0).toFixed(1)} ms for 8 tokens)`);
  lm.dispose();
}
bert.dispose();
console.log(`\ntensors alive at exit: ${tf.memory().numTensors}`);
