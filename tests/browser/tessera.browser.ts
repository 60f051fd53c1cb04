// Tessera in headless Chromium: the bundle loads, models load by name from the hub stand-in and
// match the HF fixtures on wasm, generation streams text, the Cache API serves a second load
// offline, and the webgpu backend is tried (its outcome recorded in tmp/browser/webgpu.json).
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import type { FakeHub } from '../helpers/fake-hub.js';
import { loadExpected } from '../helpers.js';
import { ARTIFACTS, bundle, fixtureHub, launchChromium, openPage, staticServer } from './harness.js';

type Tessera = typeof import('../../src/browser.js');
type TF = typeof import('@tensorflow/tfjs-core');
declare const tessera: Tessera;
declare const tf: TF;

let browser: Browser;
let hub: FakeHub;
let server: { url: string; close: () => Promise<void> };
let page: Page;
let errors: string[];
let hubRequests: string[];
const timings: Record<string, number | string> = {};

function maxAbsDiff(a: number[][][], b: number[][][]): number {
  let worst = 0;
  a.forEach((row, i) => row.forEach((col, j) => col.forEach((v, k) => { worst = Math.max(worst, Math.abs(v - b[i]![j]![k]!)); })));
  return worst;
}

/** In the page: start `backend`, load `name` by hub name, run the fixture's input, return logits and timings. */
async function logitsInPage(name: string, backend: string, inputIds: number[][], offline = false) {
  return page.evaluate(
    async ({ name, backend, inputIds, endpoint, offline }) => {
      await tessera.initBackend({ backend: backend as 'wasm', wasmPaths: '/' });
      const t0 = performance.now();
      const lm = await tessera.AutoCausalLM.fromHfHub(name, { endpoint, offline });
      const loadMs = performance.now() - t0;
      const before = tf.memory().numTensors;
      const ids = tf.tensor2d(inputIds, undefined, 'int32');
      const out = lm.forward(ids);
      const logits = (await out.logits.array()) as number[][][];
      tessera.disposeOutput(out);
      ids.dispose();
      const leaked = tf.memory().numTensors - before;
      lm.dispose();
      return { logits, loadMs, leaked, backend: tf.getBackend() };
    },
    { name, backend, inputIds, endpoint: hub.endpoint, offline },
  );
}

/** The WebGPU adapter's description, for the record. */
async function adapterInfo(): Promise<string> {
  const gpu = (navigator as unknown as { gpu?: { requestAdapter(): Promise<{ info?: Record<string, string> } | null> } }).gpu;
  const adapter = await gpu?.requestAdapter();
  const info = adapter?.info;
  return info === undefined ? 'unknown' : [info.vendor, info.architecture, info.description].filter((x) => x).join(' / ');
}

beforeAll(async () => {
  const out = await bundle(join(import.meta.dirname, 'page.ts'), 'test-page');
  copyFileSync(join(import.meta.dirname, 'index.html'), join(out, 'index.html'));
  hub = await fixtureHub();
  server = await staticServer({ '/': out });
  browser = await launchChromium();
  ({ page, errors, hubRequests } = await openPage(browser, `${server.url}/`, hub));
});

afterAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  writeFileSync(join(ARTIFACTS, 'timings.json'), `${JSON.stringify(timings, null, 2)}\n`);
  await browser?.close();
  await server?.close();
  await hub?.stop();
});

describe('Tessera in Chromium', () => {
  it('loads the bundle with no page error', async () => {
    expect(await page.evaluate(() => typeof tessera.AutoCausalLM.fromHfHub)).toBe('function');
    expect(errors).toEqual([]);
  });

  for (const name of ['llama-tiny', 'mamba-tiny', 'jamba-tiny']) {
    it(`loads ${name} by name on wasm and matches the HF logits to 1e-4, leaving no tensor`, async () => {
      const expected = loadExpected(name);
      const result = await logitsInPage(`tessera/${name}`, 'wasm', expected.input_ids);
      expect(result.backend).toBe('wasm');
      expect(maxAbsDiff(result.logits, expected.logits!)).toBeLessThan(1e-4);
      expect(result.leaked).toBe(0);
      timings[`load_${name}_wasm_ms`] = Math.round(result.loadMs);
    });
  }

  it('loads a second time offline from the Cache API with no request to the hub', async () => {
    const expected = loadExpected('llama-tiny');
    const before = hubRequests.length;
    const result = await logitsInPage('tessera/llama-tiny', 'wasm', expected.input_ids, true);
    expect(hubRequests.length).toBe(before);
    expect(maxAbsDiff(result.logits, expected.logits!)).toBeLessThan(1e-4);
    timings.load_llama_tiny_wasm_cached_ms = Math.round(result.loadMs);
  });

  it('fails clearly, leaving no tensor: offline without the model cached, an unknown model, a file the hub cannot serve', async () => {
    hub.failFirst.set('tessera/mamba-tiny/model.safetensors', [500]);
    const { errors: failures, leaked } = await page.evaluate(async (endpoint) => {
      const before = tf.memory().numTensors;
      const attempts = [
        () => tessera.AutoCausalLM.fromHfHub('tessera/not-cached', { endpoint, offline: true }),
        () => tessera.AutoCausalLM.fromHfHub('tessera/no-such-model', { endpoint }),
        () => tessera.AutoCausalLM.fromHfHub('tessera/mamba-tiny', { endpoint, cache: false }),
      ];
      const errors: string[] = [];
      for (const attempt of attempts) {
        try {
          (await attempt()).dispose();
          errors.push('loaded');
        } catch (err) {
          errors.push(`${(err as Error).name}: ${(err as Error).message}`);
        }
      }
      return { errors, leaked: tf.memory().numTensors - before };
    }, hub.endpoint);
    expect(failures[0]).toMatch(/^OfflineCacheMissError: model 'tessera\/not-cached'/);
    expect(failures[1]).toMatch(/^ModelNotFoundError: model 'tessera\/no-such-model' not found/);
    expect(failures[2]).toMatch(/^HubError: .*HTTP 500.*model\.safetensors/);
    expect(leaked).toBe(0);
  });

  it('generates the HF greedy ids on wasm and streams text in pieces that join to the generated text', async () => {
    const expected = loadExpected('llama-tiny');
    const result = await page.evaluate(
      async ({ endpoint, prompt, n }) => {
        await tessera.initBackend({ backend: 'wasm', wasmPaths: '/' });
        const lm = await tessera.AutoCausalLM.fromHfHub('tessera/llama-tiny', { endpoint, tokenizer: true });
        const before = tf.memory().numTensors;
        const t0 = performance.now();
        const [ids] = await lm.generate([prompt], { maxNewTokens: n });
        const generateMs = performance.now() - t0;
        const pieces: { text: string; at: number }[] = [];
        const stream = lm.streamText('once upon a time there was', { maxNewTokens: 12 });
        for await (const piece of stream) pieces.push({ text: piece, at: performance.now() });
        const whole = await lm.generate('once upon a time there was', { maxNewTokens: 12 });
        const leaked = tf.memory().numTensors - before;
        lm.dispose();
        return { ids, generateMs, pieces, whole, leaked };
      },
      { endpoint: hub.endpoint, prompt: expected.greedy_prompt_ids!, n: expected.greedy_ids!.length },
    );
    expect(result.ids).toEqual(expected.greedy_ids);
    expect(result.pieces.length).toBeGreaterThan(1);
    expect(result.pieces.map((p) => p.text).join('')).toBe(result.whole);
    expect(result.leaked).toBe(0);
    timings.generate_llama_tiny_wasm_ms_per_token = Number((result.generateMs / expected.greedy_ids!.length).toFixed(2));
  });

  it('runs on webgl (SwiftShader through ANGLE) and matches the HF logits to 1e-3, or records why it cannot', async () => {
    const expected = loadExpected('llama-tiny');
    const outcome = await logitsInPage('tessera/llama-tiny', 'webgl', expected.input_ids).then(
      (result) => ({ ran: true as const, backend: result.backend, maxAbsDiff: maxAbsDiff(result.logits, expected.logits!), leaked: result.leaked }),
      (err: Error) => ({ ran: false as const, reason: err.message }),
    );
    writeFileSync(join(ARTIFACTS, 'webgl.json'), `${JSON.stringify(outcome, null, 2)}\n`);
    if (outcome.ran) {
      expect(outcome.backend).toBe('webgl');
      expect(outcome.maxAbsDiff).toBeLessThan(1e-3);
      expect(outcome.leaked).toBe(0);
    } else expect(outcome.reason).toMatch(/\S/);
  });

  it('tries webgpu (software adapter): runs and matches, or records why it cannot', async () => {
    const expected = loadExpected('llama-tiny');
    const outcome = await page
      .evaluate(async () => {
        try {
          await tessera.initBackend({ backend: 'webgpu' });
          return { ok: true as const };
        } catch (err) {
          return { ok: false as const, reason: (err as Error).message };
        }
      })
      .then(async (started) => {
        if (!started.ok) return { ran: false, reason: started.reason };
        const result = await logitsInPage('tessera/llama-tiny', 'webgpu', expected.input_ids);
        const diff = maxAbsDiff(result.logits, expected.logits!);
        timings.load_llama_tiny_webgpu_ms = Math.round(result.loadMs);
        const generateMs = await page.evaluate(async ({ endpoint, prompt, n }) => {
          const lm = await tessera.AutoCausalLM.fromHfHub('tessera/llama-tiny', { endpoint });
          await lm.generate([prompt], { maxNewTokens: 2 }); // shader compilation, once
          const t0 = performance.now();
          await lm.generate([prompt], { maxNewTokens: n });
          lm.dispose();
          return performance.now() - t0;
        }, { endpoint: hub.endpoint, prompt: expected.greedy_prompt_ids!, n: expected.greedy_ids!.length });
        timings.generate_llama_tiny_webgpu_ms_per_token = Number((generateMs / expected.greedy_ids!.length).toFixed(2));
        return { ran: true, backend: result.backend, maxAbsDiff: diff, matchesTo1e4: diff < 1e-4, adapter: await page.evaluate(adapterInfo) };
      });
    writeFileSync(join(ARTIFACTS, 'webgpu.json'), `${JSON.stringify(outcome, null, 2)}\n`);
    // WebGPU's float math is not bit-for-bit IEEE (fast exp/div in shaders): 1e-3 rather than 1e-4.
    if (outcome.ran) {
      expect(outcome.backend).toBe('webgpu');
      expect(outcome.maxAbsDiff).toBeLessThan(1e-3);
    } else expect(outcome.reason).toMatch(/\S/);
    // Back to wasm for any later test.
    await page.evaluate(() => tessera.initBackend({ backend: 'wasm', wasmPaths: '/' }));
  });
});
