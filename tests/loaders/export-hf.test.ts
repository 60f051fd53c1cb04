import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import {
  AutoCausalLM,
  AutoDecoder,
  AutoEncoder,
  AutoMaskedLM,
  AutoTokenizer,
  architectureRegistry,
  disposeOutput,
  fromPattern,
  HfExportError,
  HYBRID_MODEL_TYPE,
  ModelDisposedError,
  saveModel,
  type CausalLM,
  type EncoderModel,
  type TransformerModel,
} from '../../src/index.js';
import { fixture, ids } from '../helpers.js';

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tessera-export-hf-'));
  dirs.push(dir);
  return dir;
}
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

interface RawEntry {
  dtype: string;
  shape: number[];
  bytes: Buffer;
}

/** A safetensors file as stored: each tensor's dtype, shape and raw bytes, and the metadata. */
async function rawSafetensors(path: string): Promise<{ metadata: unknown; tensors: Map<string, RawEntry> }> {
  const file = await readFile(path);
  const headerLength = Number(file.readBigUInt64LE(0));
  const header = JSON.parse(file.subarray(8, 8 + headerLength).toString('utf8')) as Record<string, any>;
  const data = file.subarray(8 + headerLength);
  const tensors = new Map<string, RawEntry>();
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    tensors.set(name, { dtype: entry.dtype, shape: entry.shape, bytes: data.subarray(entry.data_offsets[0], entry.data_offsets[1]) });
  }
  return { metadata: header.__metadata__, tensors };
}

async function readJson(path: string): Promise<Record<string, unknown>> {
  return JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
}

/** The keys `parseConfig` reads from `raw`, recorded by a proxy. */
function keysRead(architecture: string, raw: Record<string, unknown>): Set<string> {
  const read = new Set<string>();
  const proxy = new Proxy(raw, {
    get(target, key, receiver) {
      if (typeof key === 'string') read.add(key);
      return Reflect.get(target, key, receiver);
    },
  });
  architectureRegistry().get(architecture).parseConfig(proxy);
  return read;
}

const INPUT = [[1, 17, 42, 5, 30, 7]];

/** Every output a model gives for INPUT, as plain arrays (compared with toEqual: bit-identical). */
function outputsOf(model: TransformerModel): number[][] {
  const input = ids(INPUT);
  const out = (model as CausalLM).forward(input) as unknown as Record<string, tf.Tensor | tf.Tensor[]>;
  const values = Object.values(out)
    .flat()
    .filter((v): v is tf.Tensor => v instanceof tf.Tensor)
    .map((t) => Array.from(t.dataSync()));
  disposeOutput(out);
  input.dispose();
  return values;
}

const FIXTURES = [
  { name: 'bert-tiny', load: (dir: string) => AutoEncoder.fromDir(dir) as Promise<TransformerModel> },
  { name: 'bert-mlm-tiny', load: (dir: string) => AutoMaskedLM.fromDir(dir) as Promise<TransformerModel> },
  { name: 'llama-tiny', load: (dir: string) => AutoCausalLM.fromDir(dir) as Promise<TransformerModel> },
  { name: 'mamba-tiny', load: (dir: string) => AutoCausalLM.fromDir(dir) as Promise<TransformerModel> },
  { name: 'jamba-tiny', load: (dir: string) => AutoCausalLM.fromDir(dir) as Promise<TransformerModel> },
];

describe('export to Hugging Face format', () => {
  for (const { name, load } of FIXTURES) {
    it(`${name}: the export is the fixture's save_pretrained output, and reloads bit-identically`, async () => {
      const model = await load(fixture(name));
      const dir = join(await tempDir(), 'export');
      const before = tf.memory().numTensors;
      await saveModel(model, dir, { format: 'hf' });
      expect(tf.memory().numTensors).toBe(before);
      // The tokenizer files of the folder it was loaded from come along (bert-tiny has some).
      const tokenizerFiles = (await readdir(fixture(name))).filter((f) => f.startsWith('tokenizer') || f === 'vocab.txt' || f === 'special_tokens_map.json');
      expect((await readdir(dir)).sort()).toEqual(['config.json', 'model.safetensors', ...tokenizerFiles].sort());

      // (a) Exactly the fixture's tensors: names, dtypes, shapes and bytes; tied heads absent as in the fixture.
      const exported = await rawSafetensors(join(dir, 'model.safetensors'));
      const original = await rawSafetensors(join(fixture(name), 'model.safetensors'));
      expect(exported.metadata).toEqual({ format: 'pt' });
      expect([...exported.tensors.keys()].sort()).toEqual([...original.tensors.keys()].sort());
      for (const [tensor, entry] of original.tensors) {
        const mine = exported.tensors.get(tensor)!;
        expect({ tensor, dtype: mine.dtype, shape: mine.shape }).toEqual({ tensor, dtype: entry.dtype, shape: entry.shape });
        expect(mine.bytes.equals(entry.bytes), tensor).toBe(true);
      }

      // (b) Every key the config reader uses has the fixture's value; so does every key written that the fixture has.
      const config = await readJson(join(dir, 'config.json'));
      const reference = await readJson(join(fixture(name), 'config.json'));
      for (const key of keysRead(model.architecture, reference)) {
        if (key in reference) expect({ key, value: config[key] }).toEqual({ key, value: reference[key] });
      }
      for (const key of Object.keys(config)) {
        if (key in reference) expect({ key, value: config[key] }).toEqual({ key, value: reference[key] });
      }
      expect(config.architectures).toEqual(reference.architectures);
      const parse = architectureRegistry().get(model.architecture).parseConfig;
      expect(parse(config)).toEqual(parse(reference));

      // (c) Loading the export back gives bit-identical outputs.
      const reloaded = await load(dir);
      expect(reloaded.architecture).toBe(model.architecture);
      expect(outputsOf(reloaded)).toEqual(outputsOf(model));

      // (d) Nothing leaked.
      reloaded.dispose();
      const afterReload = tf.memory().numTensors;
      await model.save(join(await tempDir(), 'again'), { format: 'hf' });
      expect(tf.memory().numTensors).toBe(afterReload);
      model.dispose();
    });
  }

  it('a state-spaces Mamba exports as the HF checkpoint of the same weights', async () => {
    const model = await AutoCausalLM.fromDir(fixture('mamba-ssm-tiny'));
    const dir = await tempDir();
    await model.save(dir, { format: 'hf' });
    const exported = await rawSafetensors(join(dir, 'model.safetensors'));
    const hf = await rawSafetensors(join(fixture('mamba-tiny'), 'model.safetensors'));
    expect([...exported.tensors.keys()].sort()).toEqual([...hf.tensors.keys()].sort());
    for (const [tensor, entry] of hf.tensors) expect(exported.tensors.get(tensor)!.bytes.equals(entry.bytes), tensor).toBe(true);
    const parse = architectureRegistry().get('mamba').parseConfig;
    expect(parse(await readJson(join(dir, 'config.json')))).toEqual(parse(await readJson(join(fixture('mamba-tiny'), 'config.json'))));
    model.dispose();
  });

  it('a decoder exports as the base class: no prefix, no head', async () => {
    const model = await AutoDecoder.fromDir(fixture('llama-tiny'));
    const dir = await tempDir();
    await model.save(dir, { format: 'hf' });
    const config = await readJson(join(dir, 'config.json'));
    expect(config.architectures).toEqual(['LlamaModel']);
    const names = [...(await rawSafetensors(join(dir, 'model.safetensors'))).tensors.keys()];
    expect(names).toContain('embed_tokens.weight');
    expect(names.some((n) => n.startsWith('model.') || n.startsWith('lm_head'))).toBe(false);
    const reloaded = await AutoDecoder.fromDir(dir);
    expect(outputsOf(reloaded)).toEqual(outputsOf(model));
    model.dispose();
    reloaded.dispose();
  });

  it("carries the source config's special token ids, which no typed config keeps", async () => {
    const loaded = await AutoCausalLM.fromDir(fixture('llama-tiny'));
    const dir = await tempDir();
    await loaded.save(dir, { format: 'hf' });
    expect(await readJson(join(dir, 'config.json'))).toMatchObject({ bos_token_id: 1, eos_token_id: 2 });
    loaded.dispose();
    const fresh = AutoCausalLM.fromConfig({ model_type: 'llama', vocab_size: 64, hidden_size: 32, intermediate_size: 48, num_hidden_layers: 1, num_attention_heads: 4 });
    const freshDir = await tempDir();
    await fresh.save(freshDir, { format: 'hf' });
    expect(Object.keys(await readJson(join(freshDir, 'config.json')))).not.toContain('eos_token_id');
    fresh.dispose();
  });

  const RANDOM: Array<{ what: string; config: Record<string, unknown>; encoder?: boolean; tied?: boolean }> = [
    {
      what: 'Llama with a tied head, llama3 rope scaling and an explicit head_dim',
      tied: true,
      config: {
        model_type: 'llama', vocab_size: 96, hidden_size: 32, intermediate_size: 48, num_hidden_layers: 2, num_attention_heads: 4,
        num_key_value_heads: 1, head_dim: 12, rms_norm_eps: 1e-5, rope_theta: 500000, tie_word_embeddings: true, attention_bias: true, max_position_embeddings: 256,
        rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 64 },
      },
    },
    {
      what: 'Mamba with biases and an untied head',
      config: { model_type: 'mamba', vocab_size: 80, hidden_size: 32, num_hidden_layers: 2, state_size: 8, conv_kernel: 3, expand: 2, time_step_rank: 5, use_bias: true, tie_word_embeddings: false },
    },
    {
      what: 'Jamba with mixture-of-experts layers',
      config: {
        model_type: 'jamba', vocab_size: 64, hidden_size: 32, intermediate_size: 40, num_hidden_layers: 4, num_attention_heads: 4, num_key_value_heads: 2,
        attn_layer_period: 4, attn_layer_offset: 2, num_experts: 4, num_experts_per_tok: 2, expert_layer_period: 2, expert_layer_offset: 1,
        mamba_d_state: 8, mamba_d_conv: 4, mamba_expand: 2, mamba_dt_rank: 3,
      },
    },
    {
      what: 'BERT',
      encoder: true,
      config: { model_type: 'bert', vocab_size: 64, hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 4, intermediate_size: 48, max_position_embeddings: 16, hidden_act: 'gelu_new', layer_norm_eps: 1e-6 },
    },
  ];
  for (const { what, config, encoder, tied } of RANDOM) {
    it(`a randomly initialised ${what} round-trips`, async () => {
      const model: TransformerModel = encoder ? AutoEncoder.fromConfig(config, { seed: 3 }) : AutoCausalLM.fromConfig(config, { seed: 3 });
      const dir = await tempDir();
      await model.save(dir, { format: 'hf' });
      const written = await readJson(join(dir, 'config.json'));
      const parse = architectureRegistry().get(model.architecture).parseConfig;
      expect(parse(written)).toEqual(model.config);
      const names = [...(await rawSafetensors(join(dir, 'model.safetensors'))).tensors.keys()];
      if (tied) expect(names).not.toContain('lm_head.weight');
      if (config.model_type === 'jamba') expect(names).toContain('model.layers.1.feed_forward.experts.3.down_proj.weight');
      const reloaded = encoder ? await AutoEncoder.fromDir(dir) : await AutoCausalLM.fromDir(dir);
      expect(outputsOf(reloaded)).toEqual(outputsOf(model));
      model.dispose();
      reloaded.dispose();
    });
  }

  it('copies the tokenizer files of the source folder, a named folder or a tokenizer', async () => {
    const model = (await AutoEncoder.fromDir(fixture('bert-tiny'))) as EncoderModel;
    const fromSource = await tempDir();
    await model.save(fromSource, { format: 'hf' });
    const withoutTokenizer = await tempDir();
    await model.save(withoutTokenizer, { format: 'hf', tokenizer: false });
    expect((await readdir(withoutTokenizer)).sort()).toEqual(['config.json', 'model.safetensors']);
    const fromFolder = await tempDir();
    await model.save(fromFolder, { format: 'hf', tokenizer: fixture('bert-tiny') });
    expect((await readdir(fromSource)).sort()).toEqual((await readdir(fromFolder)).sort());
    const tokenizerFiles = ['special_tokens_map.json', 'tokenizer.json', 'tokenizer_config.json', 'vocab.txt'];
    expect((await readdir(fromFolder)).sort()).toEqual(['config.json', 'model.safetensors', ...tokenizerFiles].sort());
    for (const f of tokenizerFiles) expect((await readFile(join(fromFolder, f))).equals(await readFile(join(fixture('bert-tiny'), f)))).toBe(true);
    const tok = await AutoTokenizer.fromDir(fromFolder);
    expect(tok.encode(['Hello, worlds!']).ids).toEqual((await AutoTokenizer.fromDir(fixture('bert-tiny'))).encode(['Hello, worlds!']).ids);
    tf.dispose(Object.values(tok.encode(['x'])).filter((v) => v instanceof tf.Tensor));

    const fromTokenizer = await tempDir();
    await model.save(fromTokenizer, { format: 'hf', tokenizer: tok });
    expect((await readdir(fromTokenizer)).sort()).toEqual((await readdir(fromFolder)).sort());

    const none = await tempDir();
    await expect(model.save(none, { format: 'hf', tokenizer: fixture('llama-tiny') })).rejects.toThrow(/no tokenizer files in '.*llama-tiny'/);
    expect(await readdir(none)).toEqual([]);
    model.dispose();
  });
});

describe('export of generation defaults', () => {
  it("copies the source folder's generation_config.json as is, and writes none when it has none", async () => {
    const source = await tempDir();
    for (const f of ['config.json', 'model.safetensors']) await writeFile(join(source, f), await readFile(join(fixture('llama-tiny'), f)));
    const generation = '{\n  "do_sample": true,\n  "temperature": 0.7,\n  "max_new_tokens": 5\n}\n';
    await writeFile(join(source, 'generation_config.json'), generation);
    const model = await AutoCausalLM.fromDir(source);
    const withConfig = await tempDir();
    await model.save(withConfig, { format: 'hf', tokenizer: false });
    expect(await readFile(join(withConfig, 'generation_config.json'), 'utf8')).toBe(generation);
    model.dispose();
    const plain = await AutoCausalLM.fromDir(fixture('llama-tiny'));
    const without = await tempDir();
    await plain.save(without, { format: 'hf' });
    expect((await readdir(without)).sort()).toEqual(['config.json', 'model.safetensors']);
    plain.dispose();
  });
});

describe('export errors', () => {
  it('a hybrid that is not Jamba: HfExportError names the first difference and what to do', async () => {
    const rotary = { mixer: { type: 'attention', numHeads: 2, numKvHeads: 2, causal: true, rotary: { base: 10000 } }, ffn: { type: 'gated', intermediateSize: 24 } };
    const mamba = { mixer: { type: 'mamba', stateSize: 4, innerNormEps: 1e-5 }, ffn: { type: 'gated', intermediateSize: 24 } };
    const norm = { type: 'rmsnorm', eps: 1e-5 };
    const model = AutoCausalLM.fromConfig({ model_type: HYBRID_MODEL_TYPE, vocabSize: 32, hiddenSize: 16, norm, layers: fromPattern('MA', { A: rotary, M: mamba }) });
    const dir = await tempDir();
    await expect(saveModel(model, dir, { format: 'hf' })).rejects.toThrow(HfExportError);
    await expect(saveModel(model, dir, { format: 'hf' })).rejects.toThrow(
      /cannot export CausalLM 'hybrid' to Hugging Face format: a Tessera hybrid exports only when its layers are Jamba's, and it differs from the Jamba it would be at 'layers\[1\]\.mixer\.rotary': the model has .*, Jamba nothing\. Exportable: bert, llama, mamba, jamba; save it in Tessera's format/,
    );
    expect(await readdir(dir)).toEqual([]);
    model.dispose();

    const misplaced = AutoCausalLM.fromConfig({ model_type: HYBRID_MODEL_TYPE, vocabSize: 32, hiddenSize: 16, norm, layers: fromPattern('AMAA', { A: { ...rotary, mixer: { type: 'attention', numHeads: 2, causal: true } }, M: mamba }) });
    await expect(saveModel(misplaced, dir, { format: 'hf' })).rejects.toThrow(/its attention layers \(0, 2, 3\) are not every n-th layer from one offset/);
    misplaced.dispose();
  });

  it('a hybrid whose layers are Jamba\'s exports as Jamba', async () => {
    // jamba-tiny saved in Tessera's format reloads as a hybrid; its export is the HF fixture again.
    const jamba = await AutoCausalLM.fromDir(fixture('jamba-tiny'));
    const tesseraDir = await tempDir();
    await jamba.save(tesseraDir);
    const hybrid = await AutoCausalLM.fromDir(tesseraDir);
    expect(hybrid.architecture).toBe('hybrid');
    const dir = join(await tempDir(), 'hf');
    await hybrid.save(dir, { format: 'hf' });
    const exported = await rawSafetensors(join(dir, 'model.safetensors'));
    const original = await rawSafetensors(join(fixture('jamba-tiny'), 'model.safetensors'));
    expect([...exported.tensors.keys()].sort()).toEqual([...original.tensors.keys()].sort());
    for (const [tensor, entry] of original.tensors) expect(exported.tensors.get(tensor)!.bytes.equals(entry.bytes), tensor).toBe(true);
    const parse = architectureRegistry().get('jamba').parseConfig;
    expect(parse(await readJson(join(dir, 'config.json')))).toEqual(parse(await readJson(join(fixture('jamba-tiny'), 'config.json'))));
    const reloaded = await AutoCausalLM.fromDir(dir);
    expect(reloaded.architecture).toBe('jamba');
    expect(outputsOf(reloaded)).toEqual(outputsOf(hybrid));
    for (const m of [jamba, hybrid, reloaded]) m.dispose();

    // One built as a hybrid, with experts every other layer and no attention at all.
    const mamba = { mixer: { type: 'mamba', stateSize: 4, dtRank: 2, innerNormEps: 1e-6 }, ffn: { type: 'gated', intermediateSize: 24, activation: 'silu' } };
    const moe = { ...mamba, ffn: { type: 'moe', numExperts: 3, topK: 2, intermediateSize: 24, activation: 'silu' } };
    const built = AutoCausalLM.fromConfig({ model_type: HYBRID_MODEL_TYPE, vocabSize: 64, hiddenSize: 16, norm: { type: 'rmsnorm', eps: 1e-6 }, layers: fromPattern('MXMX', { M: mamba, X: moe }) }, { seed: 5 });
    const builtDir = await tempDir();
    await built.save(builtDir, { format: 'hf' });
    const config = await readJson(join(builtDir, 'config.json'));
    expect(config).toMatchObject({ model_type: 'jamba', num_experts: 3, expert_layer_period: 2, expert_layer_offset: 1, attn_layer_period: 5, attn_layer_offset: 4 });
    const builtReloaded = await AutoCausalLM.fromDir(builtDir);
    expect(outputsOf(builtReloaded)).toEqual(outputsOf(built));
    built.dispose();
    builtReloaded.dispose();
  });

  it('refuses a non-empty folder unless overwrite is set, and leaves no temporary files', async () => {
    const model = await AutoCausalLM.fromDir(fixture('llama-tiny'));
    const dir = await tempDir();
    await model.save(dir, { format: 'hf' });
    await expect(model.save(dir, { format: 'hf' })).rejects.toThrow(/'.*' is not empty \(config.json, model.safetensors\); pass overwrite: true/);
    await model.save(dir, { format: 'hf', overwrite: true });
    expect((await readdir(dir)).sort()).toEqual(['config.json', 'model.safetensors']);

    // A file that cannot be put in place fails the save and leaves no temporary behind.
    const blocked = await tempDir();
    await mkdir(join(blocked, 'model.safetensors'));
    await expect(model.save(blocked, { format: 'hf', overwrite: true })).rejects.toThrow();
    expect((await readdir(blocked)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    model.dispose();
  });

  it('rejects an unknown format and a disposed model', async () => {
    const model = await AutoCausalLM.fromDir(fixture('mamba-tiny'));
    const dir = await tempDir();
    await expect(saveModel(model, dir, { format: 'onnx' as 'hf' })).rejects.toThrow(/format must be 'tessera' or 'hf', got "onnx"/);
    model.dispose();
    await expect(model.save(dir, { format: 'hf' })).rejects.toThrow(ModelDisposedError);
  });

  it("a masked LM is refused in Tessera's own format before anything is written, and saves as HF", async () => {
    const model = await AutoMaskedLM.fromDir(fixture('bert-mlm-tiny'));
    const dir = join(await tempDir(), 'mlm');
    const before = tf.memory().numTensors;
    await expect(saveModel(model, dir)).rejects.toThrow(/masked LM.*Tessera's own format.*format: 'hf'/);
    await expect(readdir(dir)).rejects.toThrow(/ENOENT/);
    expect(tf.memory().numTensors).toBe(before);
    await saveModel(model, dir, { format: 'hf' });
    const reloaded = await AutoMaskedLM.fromDir(dir);
    expect(outputsOf(reloaded)).toEqual(outputsOf(model));
    reloaded.dispose();
    model.dispose();
  });

  it("the default format is still Tessera's own", async () => {
    const model = await AutoCausalLM.fromDir(fixture('mamba-tiny'));
    const dir = await tempDir();
    await model.save(dir);
    expect((await readJson(join(dir, 'config.json'))).model_type).toBe(HYBRID_MODEL_TYPE);
    model.dispose();
  });
});
