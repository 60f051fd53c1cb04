import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { AutoCausalLM, AutoEncoder, disposeOutput } from '../../src/index.js';
import { fixture, ids, loadExpected, maxAbsDiff } from '../helpers.js';

const TOL = 1e-4;

it('runs on the backend this project asked for', () => {
  expect(tf.getBackend()).toBe(process.env.TESSERA_BACKEND ?? 'wasm');
});

describe('BERT matches HF BertModel', () => {
  it('hidden states, last hidden state and pooled output', async () => {
    const expected = loadExpected('bert-tiny');
    const model = await AutoEncoder.fromDir(fixture('bert-tiny'));
    const mask = expected.attention_mask!;
    const out = model.forward(ids(expected.input_ids), {
      attentionMask: ids(mask),
      tokenTypeIds: ids(expected.token_type_ids!),
    });
    expect(out.allOutputs).toHaveLength(expected.hidden_states.length);
    out.allOutputs.forEach((h, i) => expect(maxAbsDiff(h, expected.hidden_states[i], mask), `hidden_states[${i}]`).toBeLessThan(TOL));
    expect(maxAbsDiff(out.lastHiddenState, expected.last_hidden_state, mask)).toBeLessThan(TOL);
    expect(maxAbsDiff(out.pooledOutput!, expected.pooler_output)).toBeLessThan(TOL);
    disposeOutput(out);
    model.dispose();
  });
});

describe('Llama matches HF LlamaForCausalLM', () => {
  it('logits and hidden states', async () => {
    const expected = loadExpected('llama-tiny');
    const model = await AutoCausalLM.fromDir(fixture('llama-tiny'));
    const out = model.forward(ids(expected.input_ids), { attentionMask: ids(expected.attention_mask!) });
    const n = model.layers.length;
    // HF: [embeddings, layer 1 .. N-1 outputs, final norm(layer N)].
    for (let i = 0; i < n; i++) expect(maxAbsDiff(out.allOutputs[i]!, expected.hidden_states[i]), `hidden_states[${i}]`).toBeLessThan(TOL);
    expect(maxAbsDiff(out.lastHiddenState, expected.hidden_states[n])).toBeLessThan(TOL);
    expect(maxAbsDiff(out.lastHiddenState, expected.last_hidden_state)).toBeLessThan(TOL);
    expect(maxAbsDiff(out.logits, expected.logits)).toBeLessThan(TOL);
    disposeOutput(out);
    model.dispose();
  });
});

describe('Mamba matches HF MambaForCausalLM', () => {
  it('logits and hidden states', async () => {
    const expected = loadExpected('mamba-tiny');
    const model = await AutoCausalLM.fromDir(fixture('mamba-tiny'));
    expect(model.tiedEmbeddings).toBe(true);
    const out = model.forward(ids(expected.input_ids));
    const n = model.layers.length;
    // HF's MambaModel: [layer 1 .. N outputs, norm_f(layer N)]; no embedding entry.
    for (let i = 0; i < n; i++) expect(maxAbsDiff(out.allOutputs[i + 1]!, expected.hidden_states[i]), `hidden_states[${i}]`).toBeLessThan(TOL);
    expect(maxAbsDiff(out.lastHiddenState, expected.hidden_states[n])).toBeLessThan(TOL);
    expect(maxAbsDiff(out.logits, expected.logits)).toBeLessThan(TOL);
    disposeOutput(out);
    model.dispose();
  });
});
