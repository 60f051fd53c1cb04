import { copyFile, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { AutoCausalLM, AutoEncoder, readSafetensors, writeSafetensors, type TensorToSave } from '../../src/index.js';
import { fixture } from '../helpers.js';

/** A copy of a fixture folder whose config and tensors the test may edit. */
async function editedCopy(
  name: string,
  edit: { config?: (c: Record<string, unknown>) => void; tensors?: (t: Map<string, TensorToSave>) => void },
): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tessera-bad-'));
  const config = JSON.parse(await readFile(fixture(`${name}/config.json`), 'utf8')) as Record<string, unknown>;
  edit.config?.(config);
  await writeFile(join(dir, 'config.json'), JSON.stringify(config));
  if (edit.tensors === undefined) {
    await copyFile(fixture(`${name}/model.safetensors`), join(dir, 'model.safetensors'));
  } else {
    const tensors = new Map<string, TensorToSave>([...(await readSafetensors(fixture(`${name}/model.safetensors`)))].map(([k, t]) => [k, { shape: t.shape, data: t.data }]));
    edit.tensors(tensors);
    await writeSafetensors(join(dir, 'model.safetensors'), tensors);
  }
  return dir;
}

describe('loading errors name the problem', () => {
  it('an unknown model_type', async () => {
    const dir = await editedCopy('llama-tiny', { config: (c) => (c.model_type = 'gpt_neox') });
    await expect(AutoCausalLM.fromDir(dir)).rejects.toThrow(/unknown model_type 'gpt_neox' in .*config\.json; supported: bert, llama, mamba/);
  });

  it('a missing tensor', async () => {
    const dir = await editedCopy('llama-tiny', { tensors: (t) => t.delete('model.layers.1.mlp.up_proj.weight') });
    await expect(AutoCausalLM.fromDir(dir)).rejects.toThrow(/missing from the file: 'layers\.1\.ffn\.up\.weight'/);
  });

  it('a tensor of the wrong shape', async () => {
    const dir = await editedCopy('llama-tiny', {
      tensors: (t) => t.set('model.layers.0.self_attn.q_proj.weight', { shape: [32, 64], data: new Float32Array(32 * 64) }),
    });
    await expect(AutoCausalLM.fromDir(dir)).rejects.toThrow(
      /tensor 'layers\.0\.mixer\.query\.weight' \(file: 'model\.layers\.0\.self_attn\.q_proj\.weight'\): expected shape \[64,64\], file has \[32,64\]/,
    );
  });

  it('an unexpected tensor', async () => {
    const dir = await editedCopy('llama-tiny', { tensors: (t) => t.set('model.layers.0.extra.weight', { shape: [2], data: new Float32Array(2) }) });
    await expect(AutoCausalLM.fromDir(dir)).rejects.toThrow(/not in the model: 'model\.layers\.0\.extra\.weight'/);
  });

  it('an untied model whose lm_head is missing', async () => {
    const dir = await editedCopy('llama-tiny', { tensors: (t) => t.delete('lm_head.weight') });
    await expect(AutoCausalLM.fromDir(dir)).rejects.toThrow(/missing from the file: 'lmHead\.weight'/);
  });

  it('a missing folder or config', async () => {
    await expect(AutoCausalLM.fromDir('/nonexistent/model')).rejects.toThrow(/no config\.json in '\/nonexistent\/model'/);
  });

  it('a folder without weights', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tessera-empty-'));
    await copyFile(fixture('llama-tiny/config.json'), join(dir, 'config.json'));
    await expect(AutoCausalLM.fromDir(dir)).rejects.toThrow(/no weights in .*: expected model\.safetensors, model\.safetensors\.index\.json, pytorch_model\.bin or pytorch_model\.bin\.index\.json/);
  });

  it('an encoder architecture asked for as a causal LM', async () => {
    await expect(AutoCausalLM.fromDir(fixture('bert-tiny'))).rejects.toThrow(/bert models cannot be loaded with AutoCausalLM; use AutoEncoder/);
  });

  it('a bad config value names the key', async () => {
    const dir = await editedCopy('llama-tiny', { config: (c) => (c.hidden_size = 'big') });
    await expect(AutoCausalLM.fromDir(dir)).rejects.toThrow(/llama config: 'hidden_size' must be a number, got "big"/);
  });

  it('a failed load leaves no tensors behind', async () => {
    const dir = await editedCopy('llama-tiny', { tensors: (t) => t.delete('model.norm.weight') });
    const before = tf.memory().numTensors;
    await expect(AutoCausalLM.fromDir(dir)).rejects.toThrow(/finalNorm\.weight/);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('bad forward inputs', async () => {
    const model = await AutoEncoder.fromDir(fixture('bert-tiny'));
    const ids = tf.tensor2d([[2, 5, 3]], undefined, 'int32');
    expect(() => model.forward(tf.tensor1d([1, 2], 'int32') as unknown as tf.Tensor2D)).toThrow(/inputIds must be \[batch, length\], got shape \[2\]/);
    expect(() => model.forward(tf.tensor2d([[1, 2]]))).toThrow(/inputIds must be int32, got float32/);
    expect(() => model.forward(ids, { attentionMask: tf.ones([1, 4], 'int32') as tf.Tensor2D })).toThrow(/attentionMask has shape \[1,4\], expected \[1, 3\]/);
    model.dispose();
  });
});
