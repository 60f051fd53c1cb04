import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { ModelKind } from '../../src/architectures/architecture.js';
import { checkedConfig, MAX_MODEL_BYTES_ENV, parameterByteLimit } from '../../src/architectures/build.js';
import { CONFIG_LIMITS } from '../../src/architectures/config-keys.js';
import { buildHybrid } from '../../src/architectures/hybrid/model.js';
import { architectureRegistry } from '../../src/architectures/registry.js';
import { AutoCausalLM, AutoDecoder, AutoEncoder, AutoMaskedLM, buildFromConfig, HYBRID_MODEL_TYPE, Layer, registerMixer, toHybrid, type HybridConfig } from '../../src/index.js';
import { fixture } from '../helpers.js';

const work = await mkdtemp(join(tmpdir(), 'tessera-config-'));
afterAll(() => rm(work, { recursive: true, force: true }));
afterEach(() => {
  delete process.env[MAX_MODEL_BYTES_ENV];
});

const FIXTURES = ['bert-tiny', 'llama-tiny', 'mamba-tiny', 'mamba-ssm-tiny', 'jamba-tiny'] as const;
const configs = Object.fromEntries(
  await Promise.all(FIXTURES.map(async (name) => [name, JSON.parse(await readFile(fixture(`${name}/config.json`), 'utf8')) as Record<string, unknown>])),
) as Record<(typeof FIXTURES)[number], Record<string, unknown>>;

const HYBRID = {
  model_type: HYBRID_MODEL_TYPE,
  vocabSize: 32,
  hiddenSize: 16,
  norm: { type: 'rmsnorm', eps: 1e-6 },
  layers: [
    { mixer: { type: 'mamba', stateSize: 4 }, ffn: { type: 'gated', intermediateSize: 24 } },
    { mixer: { type: 'attention', numHeads: 4, numKvHeads: 2, rotary: {} }, ffn: { type: 'moe', numExperts: 3, topK: 2, intermediateSize: 8 } },
    { mixer: { type: 'attention', numHeads: 2 }, ffn: { type: 'dense', intermediateSize: 8, bias: true }, ffnNorm: { type: 'layernorm' } },
  ],
};

/** Each base config with the kind it loads as. */
const BASE: Record<string, [Record<string, unknown>, ModelKind]> = {
  bert: [configs['bert-tiny'], 'encoder'],
  llama: [configs['llama-tiny'], 'causal-lm'],
  mamba: [configs['mamba-tiny'], 'causal-lm'],
  'mamba-ssm': [configs['mamba-ssm-tiny'], 'causal-lm'],
  jamba: [configs['jamba-tiny'], 'causal-lm'],
  hybrid: [HYBRID, 'causal-lm'],
};

const LOADERS = { encoder: AutoEncoder, decoder: AutoDecoder, 'causal-lm': AutoCausalLM, 'masked-lm': AutoMaskedLM };

/** fromConfig must throw `pattern`, fast, with not one tensor left behind. */
function expectRejected(raw: Record<string, unknown>, kind: ModelKind, pattern: RegExp, options = {}): Error {
  const before = tf.memory().numTensors;
  const start = performance.now();
  let error: Error | undefined;
  try {
    LOADERS[kind].fromConfig(raw, options).dispose();
  } catch (err) {
    error = err as Error;
  }
  const ms = performance.now() - start;
  expect(error, `expected ${pattern}`).toBeInstanceOf(Error);
  expect(error!.message).toMatch(pattern);
  expect(ms).toBeLessThan(1000);
  expect(tf.memory().numTensors).toBe(before);
  return error!;
}

const MAX = CONFIG_LIMITS.dimension;
const layersOf = (n: number) => Array.from({ length: n }, () => ({ mixer: { type: 'mamba' } }));
const hybridLayer = (i: number, spec: Record<string, unknown>) => ({ layers: HYBRID.layers.map((l, j) => (j === i ? spec : l)) });

// [architecture, what changes, the error it must give]
const RULES: [string, Record<string, unknown>, RegExp][] = [
  // The fuzzing session's reports.
  ['llama', { hidden_size: 1e9 }, new RegExp(`'hidden_size' must be an integer from 1 to ${MAX} \\(Tessera's bound on any model dimension\\), got 1000000000`)],
  ['llama', { vocab_size: 1e9 }, /'vocab_size' must be an integer from 1 to 1048576.*got 1000000000/],
  ['llama', { num_hidden_layers: 1e6 }, /'num_hidden_layers' must be an integer from 1 to 4096, got 1000000/],
  ['llama', { hidden_size: 66 }, /'hidden_size' \(66\) is not divisible by 'num_attention_heads' \(4\); choose a head count that divides it, or set 'head_dim'/],
  ['llama', { num_key_value_heads: 3 }, /'num_attention_heads' \(4\) must be a multiple of 'num_key_value_heads' \(3\)/],
  // Not coerced: strings, fractions, null, zero, negatives, non-finite.
  ['llama', { hidden_size: '64' }, /llama config: 'hidden_size' must be a number, got "64"/],
  ['llama', { hidden_size: 1.5 }, /'hidden_size' must be an integer from 1/],
  ['llama', { hidden_size: null }, /'hidden_size' is null; set a number or leave the key out for the default 4096/],
  ['llama', { intermediate_size: 0 }, /'intermediate_size' must be an integer from 1/],
  ['llama', { num_attention_heads: -4 }, /'num_attention_heads' must be an integer from 1/],
  ['llama', { intermediate_size: 2 ** 21 }, /'intermediate_size' must be an integer from 1 to 1048576/],
  ['llama', { head_dim: 15 }, /'head_dim' gives an odd head width: 'head_dim' \(15\) must be even for rotary embeddings/],
  ['llama', { hidden_size: 36, num_attention_heads: 4, num_key_value_heads: 4 }, /odd head width: .*'hidden_size' \/ 'num_attention_heads' \(36 \/ 4 = 9\)/],
  ['llama', { max_position_embeddings: 2 ** 25 }, /'max_position_embeddings' must be an integer from 1 to 16777216/],
  ['llama', { rms_norm_eps: 0 }, /'rms_norm_eps' must be a number above 0, got 0/],
  ['llama', { rope_theta: 'big' }, /'rope_theta' must be a number, got "big"/],
  ['llama', { hidden_act: 'swiglu' }, /'hidden_act' must be one of 'gelu', .*'silu'.*, got 'swiglu'/],
  ['llama', { tie_word_embeddings: 'yes' }, /'tie_word_embeddings' must be true or false, got "yes"/],
  ['llama', { rope_scaling: { rope_type: 'linear', factor: -2 } }, /rope_scaling config: 'factor' must be a number above 0, got -2/],
  ['llama', { rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 1, original_max_position_embeddings: 8192 } }, /'high_freq_factor' must differ from 'low_freq_factor'/],
  ['llama', { rope_scaling: { rope_type: 'yarn', factor: 2 } }, /'rope_type' 'yarn' is not supported/],
  ['bert', { hidden_size: 66 }, /bert config: 'hidden_size' \(66\) is not divisible by 'num_attention_heads' \(4\)/],
  ['bert', { type_vocab_size: 0 }, /'type_vocab_size' must be an integer from 1/],
  ['bert', { max_position_embeddings: 1e9 }, /'max_position_embeddings' must be an integer from 1 to 1048576/],
  ['bert', { vocab_size: undefined }, /'vocab_size' must be a number, got nothing/],
  ['bert', { layer_norm_eps: null }, /'layer_norm_eps' is null/],
  ['bert', { hidden_act: 'gelu2' }, /'hidden_act' must be one of/],
  ['bert', { num_hidden_layers: 5000 }, /'num_hidden_layers' must be an integer from 1 to 4096/],
  ['mamba', { state_size: 0 }, /mamba config: 'state_size' must be an integer from 1/],
  ['mamba', { conv_kernel: 1.5 }, /'conv_kernel' must be an integer/],
  ['mamba', { expand: 2 ** 15 }, /'expand' × 'hidden_size' \(32768 × 64 = 2097152\) is the Mamba inner width, above Tessera's bound/],
  ['mamba', { time_step_rank: 'big' }, /'time_step_rank' must be "auto" or an integer, got "big"/],
  ['mamba', { time_step_rank: 0 }, /'time_step_rank' must be an integer from 1/],
  ['mamba', { vocab_size: 1e9 }, /'vocab_size' must be an integer from 1 to 1048576/],
  ['mamba', { num_hidden_layers: 1e6 }, /'num_hidden_layers' must be an integer from 1 to 4096/],
  ['mamba-ssm', { pad_vocab_size_multiple: 0 }, /'pad_vocab_size_multiple' must be an integer from 1/],
  ['mamba-ssm', { vocab_size: MAX, pad_vocab_size_multiple: 3 }, /'pad_vocab_size_multiple' pads 'vocab_size' 1048576 to 1048578, above Tessera's bound/],
  ['mamba-ssm', { ssm_cfg: { d_state: -1 } }, /ssm_cfg config: 'd_state' must be an integer from 1/],
  ['mamba-ssm', { ssm_cfg: { layer: 'Mamba2' } }, /'layer' 'Mamba2' is not supported \(only Mamba1\)/],
  ['mamba-ssm', { d_model: '64' }, /'d_model' must be a number, got "64"/],
  ['mamba-ssm', { n_layer: 1e6 }, /'n_layer' must be an integer from 1 to 4096/],
  ['jamba', { attn_layer_offset: 2 }, /'attn_layer_offset' \(2\) must be less than 'attn_layer_period' \(2\)/],
  ['jamba', { expert_layer_period: 0 }, /'expert_layer_period' must be an integer from 1/],
  ['jamba', { num_experts: 1e6 }, /'num_experts' must be an integer from 1 to 1024/],
  ['jamba', { num_experts: 4, num_experts_per_tok: 5 }, /'num_experts_per_tok' \(5\) must be at most 'num_experts' \(4\)/],
  ['jamba', { num_key_value_heads: 3 }, /'num_attention_heads' \(4\) must be a multiple of 'num_key_value_heads' \(3\)/],
  ['jamba', { mamba_dt_rank: 'x' }, /'mamba_dt_rank' must be "auto" or an integer/],
  ['jamba', { mamba_expand: 2 ** 15 }, /'mamba_expand' × 'hidden_size'/],
  ['jamba', { hidden_size: 1e9 }, /jamba config: 'hidden_size' must be an integer from 1 to 1048576/],
  ['hybrid', { hiddenSize: 1e9 }, /tessera-hybrid config: 'hiddenSize' must be an integer from 1 to 1048576/],
  ['hybrid', { vocabSize: 1.5 }, /'vocabSize' must be an integer/],
  ['hybrid', { layers: layersOf(5000) }, /'layers' has 5000 layers, more than Tessera's bound of 4096/],
  ['hybrid', { embeddings: { maxPositions: 0 } }, /'maxPositions' must be an integer from 1/],
  ['hybrid', { embeddings: { norm: { type: 'batchnorm' } } }, /embeddings\.norm: 'batchnorm' is not supported here/],
  ['hybrid', hybridLayer(2, { mixer: { type: 'attention', numHeads: 3 } }), /layers\[2\]\.mixer \(attention\): part config: 'hiddenSize' \(16\) is not divisible by 'numHeads' \(3\)/],
  ['hybrid', hybridLayer(2, { mixer: { type: 'attention', numHeads: 4, numKvHeads: 3 } }), /layers\[2\]\.mixer \(attention\).*'numHeads' \(4\) must be a multiple of 'numKvHeads' \(3\)/],
  ['hybrid', hybridLayer(2, { mixer: { type: 'attention', numHeads: 4, rotary: { dim: 3 } } }), /layers\[2\]\.mixer \(attention\): rotary config: 'dim' must be even/],
  ['hybrid', hybridLayer(2, { mixer: { type: 'mamba', stateSize: 0 } }), /layers\[2\]\.mixer \(mamba\): part config: 'stateSize' must be an integer from 1/],
  ['hybrid', hybridLayer(2, { mixer: { type: 'lstm' } }), /layers\[2\]\.mixer: unknown mixer 'lstm'/],
  ['hybrid', hybridLayer(2, { mixer: { type: 'mamba' }, ffn: { type: 'moe', numExperts: 2, topK: 3, intermediateSize: 8 } }), /layers\[2\]\.ffn \(moe\).*'topK' must be an integer from 1 to 2, got 3/],
  ['hybrid', hybridLayer(2, { mixer: { type: 'mamba' }, ffn: { type: 'moe', numExperts: 5000, topK: 1, intermediateSize: 8 } }), /'numExperts' must be an integer from 1 to 1024/],
  ['hybrid', hybridLayer(2, { mixer: { type: 'mamba' }, ffn: { type: 'gated', intermediateSize: 8, activation: 'nope' } }), /layers\[2\]\.ffn \(gated\).*'activation' must be one of/],
  ['hybrid', hybridLayer(2, { mixer: { type: 'mamba' }, mixerNorm: { type: 'rmsnorm', eps: -1 } }), /layers\[2\]\.mixerNorm \(rmsnorm\).*'eps' must be a number above 0/],
];

describe('config validation', () => {
  it.each(RULES.map(([arch, patch, pattern], i) => [i, arch, JSON.stringify(patch).slice(0, 80), patch, pattern] as const))(
    '#%i %s %s: fails fast, names the key, allocates nothing',
    (_i, arch, _label, patch, pattern) => {
      const [base, kind] = BASE[arch]!;
      expectRejected({ ...base, ...patch }, kind, pattern);
    },
  );

  it('a Llama config without its sizes is judged by its estimate (HF defaults: 7B) and fails fast', () => {
    const error = expectRejected({ model_type: 'llama' }, 'causal-lm', /a llama causal-lm of this config would have ~6,738,000,000 parameters \(25\.1 GiB as float32\), above the limit of/);
    expect(error.message).toMatch(/not in the config, so the defaults were used: vocab_size, hidden_size, intermediate_size, num_hidden_layers/);
    expect(error.message).toMatch(/raise the limit: the maxParameterBytes option or TESSERA_MAX_MODEL_BYTES=<bytes>/);
    expect(error.name).toBe('ConfigError');
  });

  it('the byte limit: option, environment variable, and the default said in the error', () => {
    const small = { ...configs['llama-tiny'] }; // 106,560 parameters = 426,240 bytes
    expectRejected(small, 'causal-lm', /above the limit of 0\.2 MiB \(maxParameterBytes\)\. If the sizes are right/, { maxParameterBytes: 200_000 });
    process.env[MAX_MODEL_BYTES_ENV] = '100KiB';
    expectRejected(small, 'causal-lm', /above the limit of 0\.1 MiB \(TESSERA_MAX_MODEL_BYTES\)/);
    LOADERS['causal-lm'].fromConfig(small, { maxParameterBytes: 1e6 }).dispose(); // the option wins
    process.env[MAX_MODEL_BYTES_ENV] = 'lots';
    expect(() => parameterByteLimit()).toThrow(/TESSERA_MAX_MODEL_BYTES='lots' is not a size; use bytes, e\.g\. 8589934592, 8GiB or Infinity/);
    process.env[MAX_MODEL_BYTES_ENV] = 'Infinity';
    expect(parameterByteLimit().bytes).toBe(Infinity);
    delete process.env[MAX_MODEL_BYTES_ENV];
    const fallback = parameterByteLimit();
    expect(fallback.from).toMatch(tf.getBackend() === 'wasm' ? /half of the wasm backend's 4 GiB heap/ : /half of this machine's .* memory/);
    expect(() => parameterByteLimit({ maxParameterBytes: -1 })).toThrow(/maxParameterBytes must be a number of bytes above 0/);
  });

  it('too many parameter tensors fail before building (layers × experts)', () => {
    const many = { ...configs['jamba-tiny'], hidden_size: 8, num_attention_heads: 2, num_key_value_heads: 1, intermediate_size: 8, num_hidden_layers: 4096, num_experts: 64, num_experts_per_tok: 1 };
    expectRejected(many, 'causal-lm', /would have [\d,]+ parameter tensors, more than Tessera's bound of 131,072/);
  });

  it('a failing fromDir and buildFromConfig leave no tensors and say which file', async () => {
    const dir = await mkdtemp(join(work, 'llama-'));
    await copyFile(fixture('llama-tiny/model.safetensors'), join(dir, 'model.safetensors'));
    for (const patch of [{ hidden_size: 1e9 }, { num_key_value_heads: 3 }, { hidden_size: 4096, intermediate_size: 11008, num_hidden_layers: 32, vocab_size: 32000, num_attention_heads: 32, num_key_value_heads: 32 }]) {
      await writeFile(join(dir, 'config.json'), JSON.stringify({ ...configs['llama-tiny'], ...patch }));
      const before = tf.memory().numTensors;
      await expect(AutoCausalLM.fromDir(dir)).rejects.toThrow(new RegExp(`llama.*\\(in ${dir}/config\\.json\\)`));
      expect(tf.memory().numTensors).toBe(before);
    }
    const before = tf.memory().numTensors;
    expect(() => buildFromConfig({ ...configs['mamba-tiny'], state_size: 'x' }, 'decoder', 'my.json')).toThrow(/'state_size' must be a number, got "x" \(in my\.json\)/);
    expect(() => AutoDecoder.fromConfig({ ...configs['jamba-tiny'], num_experts: 0 })).toThrow(/'num_experts' must be an integer from 1/);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('fromDir checks the config before it reads the weights', async () => {
    const dir = await mkdtemp(join(work, 'llama-'));
    // Weights that would fail to read: the config error must come first.
    await writeFile(join(dir, 'model.safetensors'), 'not a safetensors file');
    await writeFile(join(dir, 'config.json'), JSON.stringify({ ...configs['llama-tiny'], num_hidden_layers: 1e6 }));
    await expect(AutoCausalLM.fromDir(dir)).rejects.toThrow(/'num_hidden_layers'/);
    await writeFile(join(dir, 'config.json'), JSON.stringify(configs['llama-tiny']));
    await expect(AutoCausalLM.fromDir(dir)).rejects.toThrow(/model\.safetensors/);
  });

  it('buildHybrid and toHybrid check every layer before building any', () => {
    const before = tf.memory().numTensors;
    const config = { ...HYBRID, layers: [...HYBRID.layers, { mixer: { type: 'mamba', expand: 0 } }] } as unknown as HybridConfig;
    expect(() => buildHybrid(config, 'causal-lm')).toThrow(/layers\[3\]\.mixer \(mamba\): part config: 'expand' must be an integer from 1/);
    expect(tf.memory().numTensors).toBe(before);
    const llama = AutoCausalLM.fromConfig(configs['llama-tiny']);
    const withModel = tf.memory().numTensors;
    expect(() => toHybrid(llama, { mixers: { 1: { type: 'mamba', stateSize: 1.5 } } })).toThrow(/layers\[1\]\.mixer \(mamba\).*'stateSize' must be an integer/);
    expect(tf.memory().numTensors).toBe(withModel);
    llama.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it("a user's part that rejects its options after others were built leaks nothing", () => {
    class Picky extends Layer {
      protected forward(x: tf.Tensor): tf.Tensor {
        return x;
      }
    }
    registerMixer('picky', (options) => {
      if (options.ok !== true) throw new Error('picky wants ok: true');
      return new Picky();
    });
    const before = tf.memory().numTensors;
    const layers = [...HYBRID.layers, { mixer: { type: 'picky' } }];
    expect(() => AutoCausalLM.fromConfig({ ...HYBRID, layers })).toThrow(/layers\[3\]\.mixer \(picky\): picky wants ok: true/);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('every fixture config parses, and HF null means "derive" only where HF says so', () => {
    for (const name of FIXTURES) {
      const raw = configs[name];
      const architecture = architectureRegistry().forConfig(raw, name);
      expect(() => checkedConfig(architecture, raw, architecture.kinds.at(-1)!, name), name).not.toThrow();
    }
    const model = AutoCausalLM.fromConfig({ ...configs['llama-tiny'], num_key_value_heads: null, head_dim: null });
    expect(model.layers.items[0]!.mixer.parameterCount()).toBe(4 * 64 * 64);
    model.dispose();
  });
});

describe('size estimates', () => {
  const cases: [string, Record<string, unknown>, ModelKind][] = [
    ...FIXTURES.map((name): [string, Record<string, unknown>, ModelKind] => [name, configs[name], name === 'bert-tiny' ? 'encoder' : 'causal-lm']),
    ['llama tied, biased, head_dim', { ...configs['llama-tiny'], tie_word_embeddings: true, attention_bias: true, mlp_bias: true, head_dim: 32 }, 'causal-lm'],
    ['llama decoder', configs['llama-tiny'], 'decoder'],
    ['mamba untied, biased', { ...configs['mamba-tiny'], tie_word_embeddings: false, use_bias: true, use_conv_bias: false, time_step_rank: 'auto' }, 'causal-lm'],
    ['jamba with experts', { ...configs['jamba-tiny'], num_experts: 3, num_experts_per_tok: 2 }, 'causal-lm'],
    ['hybrid', HYBRID, 'causal-lm'],
    ['hybrid encoder', { ...HYBRID, pooler: true, finalNorm: null, placement: 'post', embeddings: { maxPositions: 20, typeVocabSize: 2, norm: { type: 'layernorm' } } }, 'encoder'],
  ];
  it.each(cases)('%s: the estimate is what building allocates', (_name, raw, kind) => {
    const architecture = architectureRegistry().forConfig(raw);
    const size = architecture.estimateSize!(architecture.parseConfig(raw), kind);
    const { model } = buildFromConfig(raw, kind);
    const params = model.namedParameters();
    expect(size.parameters).toBe(model.parameterCount());
    expect(size.tensors).toBe(params.length);
    expect(size.largestTensor).toBe(Math.max(...params.map(([, p]) => p.size)));
    model.dispose();
  });
});
