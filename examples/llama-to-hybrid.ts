/**
 * From a pure Llama to a Llama/Mamba hybrid: keep the checkpoint's attention layers, replace
 * the others' attention with fresh Mamba mixers (the starting point for distilling attention
 * into Mamba), then save and reload the hybrid.
 *
 *   npx tsx examples/llama-to-hybrid.ts [llama-folder] [output-folder]
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { AutoCausalLM, initBackend, toHybrid } from '../src/index.js';

export async function main(
  llamaDir = join(import.meta.dirname, '../tests/fixtures/llama-tiny'),
  outDir?: string,
): Promise<{ copied: number; fresh: string[]; layer0Diff: number; reloadedSame: boolean }> {
  const llama = await AutoCausalLM.fromDir(llamaDir);

  // Layer 1 becomes Mamba; layer 0 (and every norm and feed-forward) keeps Llama's weights.
  const { model: hybrid, copied, fresh } = toHybrid(llama, {
    mixers: { 1: { type: 'mamba', stateSize: 16, convKernel: 4, expand: 2 } },
  });
  console.log(`copied ${copied.length} tensors from Llama; fresh: ${fresh.join(', ')}`);

  // The untouched first layer computes exactly what Llama's does.
  const input = tf.tensor2d([[1, 2, 3, 4, 5, 6]], undefined, 'int32');
  const layer0Diff = tf.tidy(() => {
    const a = llama.forward(input).allOutputs[1]!;
    const b = hybrid.forward(input).allOutputs[1]!;
    return tf.max(tf.abs(a.sub(b))).dataSync()[0]!;
  });
  console.log(`layer 0 output, Llama vs hybrid: max |diff| = ${layer0Diff}`);

  // Save as a Tessera checkpoint and reload it.
  const dir = outDir ?? (await mkdtemp(join(tmpdir(), 'llama-hybrid-')));
  await hybrid.save(dir);
  const reloaded = await AutoCausalLM.fromDir(dir);
  const [before, after] = tf.tidy(() => [hybrid.forward(input).logits.dataSync(), reloaded.forward(input).logits.dataSync()]);
  const reloadedSame = before!.every((v, i) => v === after![i]);
  console.log(`saved to ${dir}; reloaded outputs identical: ${reloadedSame}`);

  input.dispose();
  for (const m of [llama, hybrid, reloaded]) m.dispose();
  return { copied: copied.length, fresh, layer0Diff, reloadedSame };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await initBackend();
  await main(process.argv[2], process.argv[3]);
}
