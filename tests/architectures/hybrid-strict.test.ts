import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { AutoCausalLM, ConfigError, HYBRID_MODEL_TYPE, buildHybrid, layerRegistry, everyNth, parseHybridConfig, toHybrid, type CausalLM, type HybridConfig, type HybridEdits, type LayerSpec } from '../../src/index.js';
import { expectThrowsFlat, fixture } from '../helpers.js';

const base = (): Record<string, unknown> => ({
  model_type: HYBRID_MODEL_TYPE,
  vocabSize: 16,
  hiddenSize: 8,
  norm: { type: 'rmsnorm' },
  layers: [
    { mixer: { type: 'attention', numHeads: 2, rotary: { base: 10000 } }, ffn: { type: 'gated', intermediateSize: 16 } },
    { mixer: { type: 'mamba', stateSize: 4 } },
  ],
});

/** `base()` with one change made in place by `edit`. */
function withEdit(edit: (config: Record<string, unknown> & { layers: Record<string, unknown>[] }) => void): Record<string, unknown> {
  const config = base() as Record<string, unknown> & { layers: Record<string, unknown>[] };
  edit(config);
  return config;
}

/** Building `config` fails with exactly `message` (a ConfigError) and leaves no tensor behind. */
function expectRejected(config: Record<string, unknown>, message: string): Promise<void> {
  return expectThrowsFlat(() => AutoCausalLM.fromConfig(config).dispose(), ConfigError, message);
}

describe('hybrid configs reject unknown keys, naming the nearest valid one', () => {
  it('at the top level', async () => {
    await expectRejected(
      withEdit((c) => {
        c.tieWordEmbedings = true;
      }),
      "hybrid config: unknown key 'tieWordEmbedings'; did you mean 'tieWordEmbeddings'?",
    );
    await expectRejected(
      withEdit((c) => {
        c.placment = 'post';
      }),
      "hybrid config: unknown key 'placment'; did you mean 'placement'?",
    );
  });

  it('per layer', async () => {
    await expectRejected(
      withEdit((c) => {
        c.layers[1]!.ffm = { type: 'gated', intermediateSize: 16 };
      }),
      "hybrid config layers[1]: unknown key 'ffm'; did you mean 'ffn'?",
    );
    await expectRejected(
      withEdit((c) => {
        c.layers[1]!.mixerNrom = { type: 'layernorm' };
      }),
      "hybrid config layers[1]: unknown key 'mixerNrom'; did you mean 'mixerNorm'?",
    );
  });

  it('in embeddings', async () => {
    await expectRejected(
      withEdit((c) => {
        c.embeddings = { maxPosition: 32 };
      }),
      "hybrid config embeddings: unknown key 'maxPosition'; did you mean 'maxPositions'?",
    );
    await expectRejected(
      withEdit((c) => {
        c.embeddings = { norm: { type: 'layernorm', esp: 1e-5 } };
      }),
      "hybrid config embeddings.norm (layernorm): unknown key 'esp'; did you mean 'eps'?",
    );
  });

  it('per part, nested options included', async () => {
    await expectRejected(
      withEdit((c) => {
        c.layers[1]!.mixer = { type: 'mamba', stateSise: 4 };
      }),
      "hybrid config layers[1].mixer (mamba): unknown key 'stateSise'; did you mean 'stateSize'?",
    );
    await expectRejected(
      withEdit((c) => {
        c.layers[0]!.ffn = { type: 'gated', intermediateSise: 16 };
      }),
      "hybrid config layers[0].ffn (gated): unknown key 'intermediateSise'; did you mean 'intermediateSize'?",
    );
    await expectRejected(
      withEdit((c) => {
        c.norm = { type: 'rmsnorm', epsilon: 1e-6 };
      }),
      "hybrid config layers[0].mixerNorm (rmsnorm): unknown key 'epsilon'; did you mean 'eps'?",
    );
    await expectRejected(
      withEdit((c) => {
        c.layers[0]!.mixer = { type: 'attention', numHeads: 2, rotary: { bsae: 10000 } };
      }),
      "hybrid config layers[0].mixer (attention): rotary: unknown key 'bsae'; did you mean 'base'?",
    );
    await expectRejected(
      withEdit((c) => {
        c.layers[0]!.mixer = { type: 'attention', numHeads: 2, rotary: { scaling: { type: 'linear', factor: 2, fator: 2 } } };
      }),
      "hybrid config layers[0].mixer (attention): rotary.scaling (linear): unknown key 'fator'; did you mean 'factor'?",
    );
  });

  it('lists the valid keys when none is close', async () => {
    await expectRejected(
      withEdit((c) => {
        c.somethingElseEntirely = 1;
      }),
      "hybrid config: unknown key 'somethingElseEntirely'; valid keys: vocabSize, hiddenSize, layers, norm, finalNorm, placement, tieWordEmbeddings, embeddings, pooler, model_type, source_architecture",
    );
  });

  it('in parseHybridConfig and buildHybrid too, and accepts every key of the format', async () => {
    expect(() => parseHybridConfig({ ...base(), pooler: false, pooer: true })).toThrow("hybrid config: unknown key 'pooer'; did you mean 'pooler'?");
    const typed = { ...base(), ffn: 1 } as unknown as HybridConfig;
    expect(() => buildHybrid(typed, 'causal-lm')).toThrow("hybrid config: unknown key 'ffn'; valid keys:");
    const full: Record<string, unknown> = {
      ...base(),
      source_architecture: 'llama',
      finalNorm: { type: 'layernorm', eps: 1e-5 },
      placement: 'pre',
      tieWordEmbeddings: true,
      embeddings: { maxPositions: 32, typeVocabSize: 2, norm: { type: 'layernorm', eps: 1e-5 } },
      pooler: false,
    };
    (full.layers as Record<string, unknown>[])[0] = { ...(full.layers as Record<string, unknown>[])[0], mixerNorm: { type: 'rmsnorm' }, ffnNorm: { type: 'rmsnorm' } };
    AutoCausalLM.fromConfig(full).dispose();
  });
});

describe('the hybrid helpers reject unknown option keys', () => {
  it('everyNth and toHybrid', async () => {
    const mamba: LayerSpec = { mixer: { type: 'mamba' } };
    const options = { every: 2, ofset: 1, layer: mamba, otherwise: mamba } as unknown as Parameters<typeof everyNth>[1];
    expect(() => everyNth(4, options)).toThrow("everyNth options: unknown key 'ofset'; did you mean 'offset'?");
    const llama = (await AutoCausalLM.fromDir(fixture('llama-tiny'))) as CausalLM;
    const before = tf.memory().numTensors;
    const edits = { mixer: { 1: { type: 'mamba' } } } as unknown as HybridEdits;
    expect(() => toHybrid(llama, edits)).toThrow("toHybrid edits: unknown key 'mixer'; did you mean 'mixers'?");
    expect(tf.memory().numTensors).toBe(before);
    llama.dispose();
  });

  it('a built-in part created straight from the registry', async () => {
    expect(() => layerRegistry().create('mixer', { type: 'mamba', stateSise: 2 }, 8, 'my mixer')).toThrow(
      "my mixer (mamba): options: unknown key 'stateSise'; did you mean 'stateSize'?",
    );
  });
});
