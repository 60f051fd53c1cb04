/**
 * `tessera embed MODEL TEXT...`: one embedding per text from an encoder (BERT) or a decoder's
 * last hidden states, mean- or first-token pooled, optionally L2-normalised.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Command } from 'commander';
import { Option } from 'commander';
import { AutoTokenizer, disposeOutput, type EncoderModel } from '../../index.js';
import { loadModel, modelFolder, startBackend, withHubFlags, type HubFlags } from '../model.js';

type Pooling = 'mean' | 'cls';

/** `[B, L, H]` hidden states -> `[B, H]`: the mean over real tokens, or the first token. */
export function pool(hidden: tf.Tensor3D, mask: tf.Tensor2D, pooling: Pooling, normalize: boolean): tf.Tensor2D {
  return tf.tidy(() => {
    let pooled: tf.Tensor2D;
    if (pooling === 'cls') {
      pooled = tf.squeeze(tf.slice(hidden, [0, 0, 0], [-1, 1, -1]), [1]) as tf.Tensor2D;
    } else {
      const m = tf.expandDims(tf.cast(mask, 'float32'), 2); // [B, L, 1]
      pooled = tf.div(tf.sum(tf.mul(hidden, m), 1), tf.maximum(tf.sum(m, 1), 1e-9)) as tf.Tensor2D;
    }
    if (!normalize) return pooled;
    return tf.div(pooled, tf.maximum(tf.norm(pooled, 'euclidean', 1, true), 1e-12)) as tf.Tensor2D;
  });
}

export function embedCommand(program: Command): void {
  withHubFlags(
    program
      .command('embed')
      .description('print one embedding (a JSON array) per text')
      .argument('<model>', 'model folder or hub name (org/name), with tokenizer files')
      .argument('<text...>', 'the texts to embed')
      .addOption(new Option('--pooling <how>', 'mean over tokens, or the first ([CLS]) token').choices(['mean', 'cls']).default('mean'))
      .option('--normalize', 'scale each embedding to unit length')
      .option('--json', 'print one JSON document { model, pooling, normalize, embeddings } instead of one array per line'),
  ).action(async (model: string, texts: string[], flags: HubFlags & { pooling: Pooling; normalize?: boolean; json?: boolean }, cmd: Command) => {
    const folder = await modelFolder(model, flags, { weights: true, tokenizer: true });
    await startBackend(cmd);
    const tokenizer = await AutoTokenizer.fromDir(folder);
    const { model: loaded } = await loadModel(folder, ['encoder', 'decoder']);
    const encoder = loaded as EncoderModel;
    let embeddings: number[][];
    const encoded = tokenizer.encode(texts, { padding: true, truncation: true });
    try {
      const output = encoder.forward(encoded.inputIds, { attentionMask: encoded.attentionMask, tokenTypeIds: encoded.tokenTypeIds });
      try {
        const pooled = pool(output.lastHiddenState, encoded.attentionMask, flags.pooling, flags.normalize === true);
        embeddings = (await pooled.array()) as number[][];
        pooled.dispose();
      } finally {
        disposeOutput(output);
      }
    } finally {
      tf.dispose([encoded.inputIds, encoded.attentionMask, encoded.tokenTypeIds]);
      loaded.dispose();
    }
    if (flags.json === true) {
      process.stdout.write(`${JSON.stringify({ model, pooling: flags.pooling, normalize: flags.normalize === true, embeddings })}\n`);
    } else {
      for (const e of embeddings) process.stdout.write(`${JSON.stringify(e)}\n`);
    }
  });
}
