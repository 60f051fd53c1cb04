// Hostile model folders: shard indexes that point outside the folder, tensors in two shards, and
// weights holding NaN/±Inf. Each load fails naming the file and tensor and leaves no tensors behind.
import { copyFile, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { AutoCausalLM, readSafetensors, serializeSafetensors, type TensorToSave } from '../../src/index.js';
import { fixture } from '../helpers.js';
import { torchZipBytes } from '../helpers/pickle-writer.js';
import { splitSafetensors } from '../helpers/split-safetensors.js';
import { writeStoredZip } from '../helpers/write-zip.js';

const INDEX = 'model.safetensors.index.json';

/** llama-tiny split into two shards in a fresh folder; `edit` may rewrite the index's weight_map. */
async function shardedCopy(edit?: (weightMap: Record<string, unknown>, index: Record<string, unknown>) => void): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tessera-shards-'));
  await copyFile(fixture('llama-tiny/config.json'), join(dir, 'config.json'));
  for (const [name, bytes] of splitSafetensors(await readFile(fixture('llama-tiny/model.safetensors')))) {
    if (name !== INDEX) await writeFile(join(dir, name), bytes);
    else {
      const index = JSON.parse(bytes.toString('utf8')) as { weight_map: Record<string, unknown> };
      edit?.(index.weight_map, index);
      await writeFile(join(dir, name), JSON.stringify(index));
    }
  }
  return dir;
}

/** The load's error; asserts that no tensors were left behind. */
async function loadError(dir: string, opts?: { allowNonFinite?: boolean }): Promise<Error> {
  const before = tf.memory().numTensors;
  const err = await AutoCausalLM.fromDir(dir, opts).then(
    (m) => {
      m.dispose();
      return undefined;
    },
    (e: unknown) => e,
  );
  expect(tf.memory().numTensors).toBe(before);
  expect(err, 'expected the load to fail').toBeInstanceOf(Error);
  expect((err as Error).constructor).toBe(Error);
  return err as Error;
}

const FIRST = 'model.embed_tokens.weight';

describe('shard indexes stay inside the model folder', () => {
  it('a well-formed two-shard copy loads (control)', async () => {
    const before = tf.memory().numTensors;
    const model = await AutoCausalLM.fromDir(await shardedCopy());
    model.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  for (const [label, name, why] of [
    ['a parent-directory escape', '../outside.safetensors', "has a '\\.\\.' segment"],
    ['an escape in the middle', 'sub/../../outside.safetensors', "has a '\\.\\.' segment"],
    ['an absolute path', '/etc/passwd', 'is an absolute path'],
    ['a Windows drive path', 'C:/model.safetensors', 'is an absolute path'],
    ['a backslash', '..\\outside.safetensors', 'contains a backslash'],
    ['a NUL byte', 'model\u0000.safetensors', 'contains a NUL byte'],
    ['an empty name', '', 'is an empty name'],
    ['the folder itself', '.', 'resolves outside the model folder'],
  ] as const) {
    it(`${label} is refused, naming the index and the shard`, async () => {
      const dir = await shardedCopy((m) => (m[FIRST] = name));
      // The escaping target exists: the refusal is about the name, not a missing file.
      await writeFile(join(dir, '..', 'outside.safetensors'), await readFile(join(dir, 'model-00001-of-00002.safetensors')));
      const err = await loadError(dir);
      expect(err.message).toContain(join(dir, INDEX));
      expect(err.message).toContain(`shard '${name}'`);
      expect(err.message).toMatch(new RegExp(`${why}; a shard index may only name files inside the model folder`));
    });
  }

  it('weight_map values that are not strings, and a weight_map that is not an object, are refused', async () => {
    for (const value of [42, null, ['model-00001-of-00002.safetensors'], { file: 'x' }]) {
      const err = await loadError(await shardedCopy((m) => (m[FIRST] = value)));
      expect(err.message).toMatch(new RegExp(`index\\.json: weight_map entry for tensor '${FIRST}' is (number|null|object), not a shard file name`));
    }
    for (const wm of [null, [], 'x']) {
      const err = await loadError(await shardedCopy((_, index) => (index.weight_map = wm)));
      expect(err.message).toMatch(/index\.json has no weight_map object/);
    }
  });

  it('a shard in a subfolder, and a shard that is a symlink out of the folder (the HF cache layout), load', async () => {
    const dir = await shardedCopy((m) => {
      for (const k of Object.keys(m)) if (m[k] === 'model-00002-of-00002.safetensors') m[k] = 'sub/model-00002-of-00002.safetensors';
    });
    await mkdir(join(dir, 'sub'));
    await copyFile(join(dir, 'model-00002-of-00002.safetensors'), join(dir, 'sub', 'model-00002-of-00002.safetensors'));
    // The first shard becomes a relative symlink to a blob outside the folder, as in snapshots/<commit>/.
    const blobs = await mkdtemp(join(tmpdir(), 'tessera-blobs-'));
    await copyFile(join(dir, 'model-00001-of-00002.safetensors'), join(blobs, 'abc123'));
    await rm(join(dir, 'model-00001-of-00002.safetensors'));
    await symlink(relative(dir, join(blobs, 'abc123')), join(dir, 'model-00001-of-00002.safetensors'));
    const model = await AutoCausalLM.fromDir(dir);
    // The embedding (first shard, through the symlink) holds the fixture's values.
    const param = model.namedParameters().find(([n]) => n === 'embeddings.word.weight')![1];
    const expected = (await readSafetensors(fixture('llama-tiny/model.safetensors'))).get(FIRST)!;
    expect(Array.from(param.dataSync())).toEqual(Array.from(expected.data));
    model.dispose();
  });

  it('a tensor present in two shards is refused rather than one silently winning', async () => {
    const dir = await shardedCopy();
    const t = await readSafetensors(join(dir, 'model-00001-of-00002.safetensors'));
    const second = await readSafetensors(join(dir, 'model-00002-of-00002.safetensors'));
    const merged = new Map<string, TensorToSave>([...second].map(([k, v]) => [k, { shape: v.shape, data: v.data }]));
    merged.set(FIRST, { shape: t.get(FIRST)!.shape, data: new Float32Array(t.get(FIRST)!.data.length) });
    await writeFile(join(dir, 'model-00002-of-00002.safetensors'), serializeSafetensors(merged));
    const err = await loadError(dir);
    expect(err.message).toMatch(new RegExp(`tensor '${FIRST}' is in two shards listed in .*index\\.json: 'model-00001-of-00002\\.safetensors' and 'model-00002-of-00002\\.safetensors'`));
  });
});

describe('non-finite weights', () => {
  const Q = 'model.layers.0.self_attn.q_proj.weight';

  async function llamaWith(edit: (t: Map<string, TensorToSave>) => void, dtype?: 'F16'): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), 'tessera-nan-'));
    await copyFile(fixture('llama-tiny/config.json'), join(dir, 'config.json'));
    const tensors = new Map<string, TensorToSave>([...(await readSafetensors(fixture('llama-tiny/model.safetensors')))].map(([k, t]) => [k, { shape: t.shape, data: t.data.slice(), dtype }]));
    edit(tensors);
    await writeFile(join(dir, 'model.safetensors'), serializeSafetensors(tensors));
    return dir;
  }

  it('NaN and ±Inf fail the load naming the file tensor, the Tessera parameter and the count', async () => {
    const dir = await llamaWith((t) => {
      const q = t.get(Q)!.data;
      q[0] = NaN;
      q[17] = Infinity;
      q[4095] = -Infinity;
      t.get('model.norm.weight')!.data[3] = NaN;
    });
    const err = await loadError(dir);
    expect(err.message).toMatch(/non-finite weights \(the file is corrupt; pass \{ allowNonFinite: true \} to load it anyway\)/);
    expect(err.message).toMatch(/tensor 'layers\.0\.mixer\.query\.weight' \(file: 'model\.layers\.0\.self_attn\.q_proj\.weight'\): 3 of 4096 values are NaN or infinite/);
    expect(err.message).toMatch(/tensor 'finalNorm\.weight' \(file: 'model\.norm\.weight'\): 1 of 64 values are NaN or infinite/);
  });

  it('a half-precision overflow to infinity is caught too', async () => {
    const dir = await llamaWith((t) => (t.get(Q)!.data[5] = 1e6), 'F16');
    expect((await loadError(dir)).message).toMatch(/'layers\.0\.mixer\.query\.weight' .*: 1 of 4096 values are NaN or infinite/);
  });

  it('allowNonFinite: true loads the weights as they are (fromDir and fromPretrained)', async () => {
    const dir = await llamaWith((t) => (t.get(Q)!.data[2] = NaN));
    for (const load of [() => AutoCausalLM.fromDir(dir, { allowNonFinite: true }), () => AutoCausalLM.fromPretrained(dir, { allowNonFinite: true })]) {
      const before = tf.memory().numTensors;
      const model = await load();
      const q = model.namedParameters().find(([n]) => n === 'layers.0.mixer.query.weight')![1].dataSync();
      expect(Number.isNaN(q[2])).toBe(true);
      expect(q[3]).toBe((await readSafetensors(fixture('llama-tiny/model.safetensors'))).get(Q)!.data[3]);
      model.dispose();
      expect(tf.memory().numTensors).toBe(before);
    }
    expect((await loadError(dir, { allowNonFinite: false })).message).toMatch(/1 of 4096 values are NaN or infinite/);
  });

  it('a PyTorch .bin with a NaN weight fails the same way', async () => {
    const { readPytorchCheckpoint } = await import('../../src/loaders/pytorch/index.js');
    const tensors = await readPytorchCheckpoint(fixture('mamba-ssm-tiny/pytorch_model.bin'));
    const list = [...tensors].map(([k, t]): [string, { shape: number[]; data: Float32Array }] => [k, { shape: t.shape, data: Float32Array.from(t.data) }]);
    list.find(([k]) => k === 'backbone.layers.1.mixer.A_log')![1].data[7] = NaN;
    const dir = await mkdtemp(join(tmpdir(), 'tessera-nan-bin-'));
    await copyFile(fixture('mamba-ssm-tiny/config.json'), join(dir, 'config.json'));
    await writeFile(join(dir, 'pytorch_model.bin'), torchZipBytes(list, writeStoredZip));
    expect((await loadError(dir)).message).toMatch(/\(file: 'backbone\.layers\.1\.mixer\.A_log'\): 1 of \d+ values are NaN or infinite/);
  });
});
