import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { AutoCausalLM, Attention, MambaMixer, disposeOutput, type CausalLM, type LayerStateStore } from '../../src/index.js';
import { fixture, ids, loadExpected, maxAbsDiff } from '../helpers.js';

const TOL = 1e-4;

/** HF's reference loop: full forward of prompt + tokens so far, argmax of the last position. */
function greedy(model: CausalLM, prompt: number[], steps: number): number[] {
  const tokens = [...prompt];
  for (let s = 0; s < steps; s++) {
    const next = tf.tidy(() => {
      const out = model.forward(ids([tokens]));
      const last = out.logits.slice([0, tokens.length - 1, 0], [1, 1, -1]);
      return last.reshape([-1]).argMax();
    });
    tokens.push(next.dataSync()[0]!);
    next.dispose();
  }
  return tokens.slice(prompt.length);
}

/** A minimal cache: keeps each mixer's latest state alive between calls (the caller disposes it). */
class StateStore implements LayerStateStore {
  private readonly states = new Map<object, Record<string, tf.Tensor>>();
  get(owner: object): Record<string, tf.Tensor> | undefined {
    return this.states.get(owner);
  }
  set(owner: object, state: Record<string, tf.Tensor>): void {
    const old = this.states.get(owner);
    this.states.set(owner, Object.fromEntries(Object.entries(state).map(([k, t]) => [k, tf.keep(t)])));
    if (old !== undefined) tf.dispose(Object.values(old));
  }
  /** State names per owner, e.g. ['key', 'value'] for attention. */
  keysOf(owner: object): string[] {
    return Object.keys(this.states.get(owner) ?? {}).sort();
  }
  dispose(): void {
    for (const s of this.states.values()) tf.dispose(Object.values(s));
    this.states.clear();
  }
}

/** Greedy decoding with the cache: the prompt once, then one token per call. */
function greedyCached(model: CausalLM, prompt: number[], steps: number): { tokens: number[]; stateKeys: string[][] } {
  const cache = new StateStore();
  const out: number[] = [];
  let input = prompt;
  let offset = 0;
  for (let s = 0; s < steps; s++) {
    const next = tf.tidy(() => {
      const { logits } = model.forward(ids([input]), { cache, offset });
      return logits.slice([0, input.length - 1, 0], [1, 1, -1]).reshape([-1]).argMax();
    });
    offset += input.length;
    input = [next.dataSync()[0]!];
    out.push(input[0]!);
    next.dispose();
  }
  const stateKeys = model.layers.items.map((l) => cache.keysOf(l.mixer));
  cache.dispose();
  return { tokens: out, stateKeys };
}

describe('Jamba matches HF JambaForCausalLM', () => {
  it('builds Mamba layers 0, 2 and attention layers 1, 3 from the one Block', async () => {
    const model = await AutoCausalLM.fromDir(fixture('jamba-tiny'));
    expect(model.architecture).toBe('jamba');
    expect(model.layers.items.map((l) => l.mixer.constructor)).toEqual([MambaMixer, Attention, MambaMixer, Attention]);
    // Jamba's Mamba is the shared mixer with its inner norms switched on.
    expect((model.layers.items[0]!.mixer as MambaMixer).dtNorm).toBeDefined();
    model.dispose();
  });

  it('logits and every hidden state', async () => {
    const expected = loadExpected('jamba-tiny');
    const model = await AutoCausalLM.fromDir(fixture('jamba-tiny'));
    const out = model.forward(ids(expected.input_ids));
    const n = model.layers.length;
    // HF: [embeddings, layer 1 .. N-1 outputs, final norm(layer N)], as for Llama.
    expect(expected.hidden_states).toHaveLength(n + 1);
    for (let i = 0; i < n; i++) expect(maxAbsDiff(out.allOutputs[i]!, expected.hidden_states[i]), `hidden_states[${i}]`).toBeLessThan(TOL);
    expect(maxAbsDiff(out.lastHiddenState, expected.hidden_states[n])).toBeLessThan(TOL);
    expect(maxAbsDiff(out.lastHiddenState, expected.last_hidden_state)).toBeLessThan(TOL);
    expect(maxAbsDiff(out.logits, expected.logits)).toBeLessThan(TOL);
    disposeOutput(out);
    model.dispose();
  });

  it('greedy ids from a loop of full forwards', async () => {
    const expected = loadExpected('jamba-tiny');
    const model = await AutoCausalLM.fromDir(fixture('jamba-tiny'));
    const before = tf.memory().numTensors;
    expect(greedy(model, expected.greedy_prompt_ids!, expected.greedy_ids!.length)).toEqual(expected.greedy_ids);
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });

  it('greedy ids with the KV cache and the Mamba state in one model', async () => {
    const expected = loadExpected('jamba-tiny');
    const model = await AutoCausalLM.fromDir(fixture('jamba-tiny'));
    const before = tf.memory().numTensors;
    const { tokens, stateKeys } = greedyCached(model, expected.greedy_prompt_ids!, expected.greedy_ids!.length);
    expect(tokens).toEqual(expected.greedy_ids);
    expect(stateKeys).toEqual([['conv', 'ssm'], ['key', 'value'], ['conv', 'ssm'], ['key', 'value']]);
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });
});

describe('Jamba generation', () => {
  it('lm.generate reproduces the greedy ids with the KV cache and the Mamba state', async () => {
    const expected = loadExpected('jamba-tiny');
    const model = await AutoCausalLM.fromDir(fixture('jamba-tiny'));
    const before = tf.memory().numTensors;
    expect(model.generate([expected.greedy_prompt_ids!], { maxNewTokens: 8 })).toEqual([expected.greedy_ids]);
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });
});
