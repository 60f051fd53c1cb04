import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AutoCausalLM, AutoDecoder, AutoEncoder, createContext, registerGradients, disposeOutput, type CausalLM, type DecoderModel, type EncoderModel } from '../../src/index.js';
import { fixture, ids, loadExpected } from '../helpers.js';

let llama: CausalLM;
let mamba: DecoderModel;
let bert: EncoderModel;
const llamaInputs = loadExpected('llama-tiny');
const bertInputs = loadExpected('bert-tiny');

beforeAll(async () => {
  llama = await AutoCausalLM.fromDir(fixture('llama-tiny'));
  mamba = await AutoDecoder.fromDir(fixture('mamba-tiny'));
  bert = await AutoEncoder.fromDir(fixture('bert-tiny'));
  await registerGradients();
});
afterAll(() => {
  llama.dispose();
  mamba.dispose();
  bert.dispose();
});

/** Run `fn` with fresh input tensors and free them afterwards. */
function withIds<T>(rows: number[][], fn: (x: tf.Tensor2D) => T): T {
  const x = ids(rows);
  try {
    return fn(x);
  } finally {
    x.dispose();
  }
}

describe('hook points', () => {
  it('lists the required points for every architecture', () => {
    for (const model of [llama, mamba, bert]) {
      const points = model.hookPoints();
      expect(points).toContain('embeddings');
      for (let i = 0; i < model.layers.length; i++) {
        expect(points).toContain(`layers.${i}`);
        expect(points).toContain(`layers.${i}.mixer`);
      }
    }
    expect(llama.hookPoints()).toEqual(expect.arrayContaining(['layers.1.ffn', 'finalNorm', 'lmHead', 'layers.0.mixer.scores', 'layers.0.mixer.probs', 'layers.0.mixer.q']));
    expect(mamba.hookPoints()).toEqual(expect.arrayContaining(['finalNorm', 'layers.0.mixer.delta', 'layers.0.mixer.B', 'layers.0.mixer.C', 'layers.0.mixer.conv', 'layers.0.mixer.scan', 'layers.0.mixer.state']));
    expect(mamba.hookPoints()).not.toContain('layers.0.ffn');
    expect(bert.hookPoints()).toEqual(expect.arrayContaining(['layers.0.ffn', 'embeddings.norm', 'pooler']));
    // Containers without a forward are not points.
    expect(llama.hookPoints()).not.toContain('layers');
    expect(llama.hookPoints()).not.toContain('');
  });

  it('every listed point fires during a forward', () => {
    for (const model of [llama, mamba, bert]) {
      const seen = new Set<string>();
      const handles = model.hookPoints().map((name) => model.addHook(name, (_v, ctx) => void seen.add(ctx.name)));
      withIds(llamaInputs.input_ids, (x) => disposeOutput(model.forward(x)));
      handles.forEach((h) => h.remove());
      expect([...seen].sort()).toEqual([...model.hookPoints()].sort());
    }
  });

  it('unknown names fail with the nearest valid names', () => {
    expect(() => llama.addHook('layers.0.mixr', () => undefined)).toThrow(/unknown hook point 'layers\.0\.mixr'; did you mean 'layers\.0\.mixer'/);
    expect(() => llama.addHook('layer.1', () => undefined)).toThrow(/did you mean 'layers\.1'/);
    expect(() => llama.runWithCache(ids([[1]]), { names: ['layers.7'] })).toThrow(/unknown hook point 'layers\.7'/);
    expect(() => llama.runWithCache(ids([[1]]), { names: /^nothing/ })).toThrow(/matches no hook point/);
    expect(() => llama.addPreHook('layers.0.mixer.scores', () => undefined)).toThrow(/has no input.*'layers\.0\.mixer'/);
    expect(llama.layers.items[0]!.mixer.hasHooks()).toBe(false);
  });
});

describe('capture', () => {
  it('layers.{i} equals allOutputs[i + 1] exactly, and only asked-for points are kept', () => {
    withIds(llamaInputs.input_ids, (x) => {
      const { output, cache } = llama.runWithCache(x, { names: /^layers\.\d+$/ });
      expect(cache.names()).toEqual(['layers.0', 'layers.1']);
      for (let i = 0; i < llama.layers.length; i++) {
        expect(Array.from(cache.get(`layers.${i}`).dataSync())).toEqual(Array.from(output.allOutputs[i + 1]!.dataSync()));
      }
      expect(() => cache.get('layers.0.mixer')).toThrow(/'layers\.0\.mixer' was not captured; nearest captured: 'layers\.0'/);
      disposeOutput(output);
      cache.dispose();
    });
  });

  it('captures Mamba internals and attention probabilities with the documented shapes', () => {
    withIds(llamaInputs.input_ids, (x) => {
      const [batch, length] = x.shape;
      const m = mamba.runWithCache(x, { names: (n) => n.startsWith('layers.1.mixer.') && !/Proj$/.test(n) });
      expect(m.cache.get('layers.1.mixer.delta').shape).toEqual([batch, length, 128]);
      expect(m.cache.get('layers.1.mixer.B').shape).toEqual([batch, length, 16]);
      expect(m.cache.get('layers.1.mixer.state').shape).toEqual([batch, 128, 16]);
      const l = llama.runWithCache(x, { names: ['layers.0.mixer.probs'] });
      const probs = l.cache.get('layers.0.mixer.probs');
      expect(probs.shape).toEqual([batch, 4, length, length]);
      // Rows sum to one and the causal mask zeroes the future.
      const sums = tf.tidy(() => probs.sum(-1).sub(1).abs().max().dataSync()[0]!);
      expect(sums).toBeLessThan(1e-5);
      expect((probs.arraySync() as number[][][][])[0]![0]![0]![1]).toBe(0);
      for (const run of [m, l]) {
        disposeOutput(run.output);
        run.cache.dispose();
      }
    });
  });

  it('the cache owns its tensors until dispose, or hands one over with take', () => {
    withIds([[4, 5, 6]], (x) => {
      const before = tf.memory().numTensors;
      const { output, cache } = mamba.runWithCache(x, { names: ['layers.0', 'layers.1', 'layers.1'] });
      disposeOutput(output);
      expect(cache.names()).toEqual(['layers.0', 'layers.1']);
      const mine = cache.take('layers.1');
      expect(cache.has('layers.1')).toBe(false);
      cache.dispose();
      expect(mine.isDisposed).toBe(false);
      expect(() => cache.get('layers.0')).toThrow(/activation cache was disposed/);
      mine.dispose();
      expect(tf.memory().numTensors).toBe(before);
    });
  });

  it('captured tensors survive the forward and nothing leaks', () => {
    withIds(llamaInputs.input_ids, (x) => {
      const mask = ids(llamaInputs.attention_mask!);
      const run = () => {
        const { output, cache } = llama.runWithCache(x, { attentionMask: mask });
        expect(cache.size).toBe(llama.hookPoints().length);
        for (const [, t] of cache.entries()) expect(t.isDisposed).toBe(false);
        disposeOutput(output);
        // Owned separately from the output: still readable.
        expect(cache.get('layers.1').dataSync().length).toBeGreaterThan(0);
        cache.dispose();
      };
      run();
      const before = tf.memory().numTensors;
      for (let i = 0; i < 3; i++) run();
      expect(tf.memory().numTensors).toBe(before);
      mask.dispose();
    });
  });
});

describe('replacement', () => {
  it('replacing layers.0 with zeros equals running the rest of the model on zeros', () => {
    withIds(llamaInputs.input_ids, (x) => {
      const plain = llama.forward(x);
      const zeros = tf.zerosLike(plain.allOutputs[1]!);
      const hooked = llama.runWithHooks(x, { 'layers.0': () => zeros });
      // The user's tensor is not handed out inside the output.
      expect(hooked.allOutputs[1]).not.toBe(zeros);
      const manual = tf.tidy(() => {
        const ctx = createContext();
        let h: tf.Tensor = zeros;
        for (const layer of llama.layers.items.slice(1)) h = layer.call(h, ctx);
        return llama.project(llama.finalNorm!.call(h, ctx) as tf.Tensor3D);
      });
      expect(tf.tidy(() => plain.logits.sub(hooked.logits).abs().max().dataSync()[0]!)).toBeGreaterThan(1e-2);
      expect(Array.from(hooked.logits.dataSync())).toEqual(Array.from(manual.dataSync()));
      expect(llama.layers.items[0]!.hasHooks()).toBe(false);
      [plain, hooked].forEach(disposeOutput);
      tf.dispose([zeros, manual]);
    });
  });

  it('removed hooks leave outputs bit-identical to a model that never had hooks', async () => {
    const fresh = await AutoEncoder.fromDir(fixture('bert-tiny'));
    const mask = ids(bertInputs.attention_mask!);
    withIds(bertInputs.input_ids, (x) => {
      const handles = bert.hookPoints().map((name) => bert.addHook(name, (v) => v.mul(2)));
      handles.push(bert.addPreHook('layers.1', (v) => v.add(1)));
      const changed = bert.forward(x, { attentionMask: mask });
      handles.forEach((h) => h.remove());
      const after = bert.forward(x, { attentionMask: mask });
      const never = fresh.forward(x, { attentionMask: mask });
      expect(Array.from(after.lastHiddenState.dataSync())).toEqual(Array.from(never.lastHiddenState.dataSync()));
      expect(Array.from(after.pooledOutput!.dataSync())).toEqual(Array.from(never.pooledOutput!.dataSync()));
      expect(Array.from(changed.lastHiddenState.dataSync())).not.toEqual(Array.from(never.lastHiddenState.dataSync()));
      [changed, after, never].forEach(disposeOutput);
    });
    mask.dispose();
    fresh.dispose();
  });

  it('hooks on one point run in the order added, each seeing the previous replacement', () => {
    withIds([[5, 6, 7]], (x) => {
      const order: string[] = [];
      const a = mamba.addHook('layers.0.mixer', (v) => (order.push('a'), v.mul(0)));
      const b = mamba.addHook('layers.0.mixer', (v) => {
        order.push('b');
        expect(v.abs().max().dataSync()[0]).toBe(0);
        return v.add(1);
      });
      const outer = mamba.addHook('layers.0', () => void order.push('block'));
      const pre = mamba.addPreHook('layers.0.mixer', () => void order.push('pre'));
      const captured = mamba.runWithCache(x, { names: ['layers.0.mixer'] });
      expect(order).toEqual(['pre', 'a', 'b', 'block']);
      expect(tf.tidy(() => captured.cache.get('layers.0.mixer').sub(1).abs().max().dataSync()[0])).toBe(0);
      [a, b, outer, pre].forEach((h) => h.remove());
      disposeOutput(captured.output);
      captured.cache.dispose();
    });
  });

  it('bad replacements and failing hooks give clear errors, remove their hooks and leak nothing', () => {
    withIds([[5, 6, 7]], (x) => {
      const wrong = tf.zeros([1, 3, 7]);
      const before = tf.memory().numTensors;
      expect(() => llama.runWithHooks(x, [{ name: 'layers.0.mixer', fn: () => wrong }])).toThrow(
        "hook on 'layers.0.mixer' returned shape [1,3,7], expected [1,3,64] (a replacement must keep the shape)",
      );
      expect(() => llama.runWithHooks(x, { 'layers.0': (v) => v.toInt() })).toThrow(/returned dtype int32, expected float32/);
      expect(() => llama.runWithHooks(x, { embeddings: () => { throw new Error('boom'); } })).toThrow('boom');
      expect(tf.memory().numTensors).toBe(before);
      // Every hook of the failed runs was removed.
      expect(llama.namedModules().some(([, m]) => m.hasHooks())).toBe(false);
      wrong.dispose();
    });
  });
});

describe('gradients', () => {
  it('flow through a steering vector added by a hook, and training it lowers the loss', () => {
    withIds(llamaInputs.input_ids, (x) => {
      const steer = tf.variable(tf.zeros([64]));
      const optimizer = tf.train.adam(0.05);
      const loss = () =>
        llama.runWithHooks(x, { 'layers.0': (v) => v.add(steer) }).logits.slice([0, 0, 7], [-1, -1, 1]).mean().neg() as tf.Scalar;
      const first = tf.tidy(() => loss().dataSync()[0]!);
      const { grads } = tf.variableGrads(loss, [steer]);
      expect(tf.tidy(() => grads[steer.name]!.abs().sum().dataSync()[0]!)).toBeGreaterThan(0);
      tf.dispose(Object.values(grads));
      optimizer.minimize(loss, false, [steer]); // creates Adam's two slots for steer
      const before = tf.memory().numTensors;
      for (let i = 0; i < 4; i++) optimizer.minimize(loss, false, [steer]);
      const last = tf.tidy(() => loss().dataSync()[0]!);
      expect(last).toBeLessThan(first - 0.1);
      // The model's own weights were not trained (varList) and nothing leaked per step.
      expect(tf.memory().numTensors).toBe(before);
      optimizer.dispose();
      steer.dispose();
    });
  });
});

describe('LM head', () => {
  it('is the hook point lmHead whether it is its own matrix or tied to the embeddings', async () => {
    const tied = await AutoCausalLM.fromDir(fixture('mamba-tiny'));
    try {
      expect(llama.tiedEmbeddings).toBe(false);
      expect(tied.tiedEmbeddings).toBe(true);
      for (const model of [llama, tied]) expect(model.hookPoints()).toContain('lmHead');
      // Tied: the matrix is listed (and saved) once, under the embeddings.
      const names = tied.namedParameters().map(([name]) => name);
      expect(names.filter((n) => n.startsWith('lmHead'))).toEqual([]);
      expect(names).toContain('embeddings.word.weight');

      withIds(loadExpected('mamba-tiny').input_ids, (x) => {
        let captured: tf.Tensor | undefined;
        const plain = tied.runWithHooks(x, { lmHead: (v) => void (captured = tf.keep(v.clone())) });
        expect(Array.from(captured!.dataSync())).toEqual(Array.from(plain.logits.dataSync()));
        // A replacement reaches the output and generation: every logit but token 7's pushed down.
        const onlySeven = (v: tf.Tensor) => v.add(tf.oneHot(7, v.shape.at(-1)!).mul(1e4).sub(5e3));
        const steered = tied.runWithHooks(x, { lmHead: onlySeven });
        expect(Array.from(tf.tidy(() => steered.logits.argMax(-1).dataSync()))).toEqual(new Array(x.size).fill(7));
        const handle = tied.addHook('lmHead', onlySeven);
        expect(tied.generate([[1, 2, 3]], { maxNewTokens: 4 })).toEqual([[7, 7, 7, 7]]);
        handle.remove();
        expect(tied.generate([[1, 2, 3]], { maxNewTokens: 4 })[0]).not.toEqual([7, 7, 7, 7]);
        [plain, steered].forEach(disposeOutput);
        captured!.dispose();
      });
    } finally {
      tied.dispose();
    }
  });
});
