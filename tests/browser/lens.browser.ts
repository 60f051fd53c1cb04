// Tessera Lens in headless Chromium: every view renders for the bundled models (DOM checks, a
// screenshot of each in tmp/browser/screenshots), the logit lens's last layer is the model's own
// prediction, an ablation changes the logits, generation streams, and a hub name loads.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import type { FakeHub } from '../helpers/fake-hub.js';
import { startLens } from '../../examples/lens/serve.js';
import { ARTIFACTS, fixtureHub, launchChromium, openPage } from './harness.js';

interface LensWindow {
  lens: {
    state: { lm?: import('../../src/browser.js').CausalLM; pieces: string[] };
    tessera: typeof import('../../src/browser.js');
    tf: typeof import('@tensorflow/tfjs-core');
    analyse: () => Promise<void>;
  };
}
declare const lens: LensWindow['lens'];

const SHOTS = join(ARTIFACTS, 'screenshots');
let browser: Browser;
let hub: FakeHub;
let lensServer: { url: string; close: () => Promise<void> };
let page: Page;
let errors: string[];

async function loadModel(value: string, hubName?: string): Promise<void> {
  await page.selectOption('#model', value);
  if (hubName !== undefined) await page.fill('#hub-name', hubName);
  const before = await page.evaluate(() => document.body.dataset.analysed ?? '');
  await page.click('#load');
  await page.waitForFunction((b) => (document.body.dataset.analysed ?? '') !== b || document.getElementById('status')!.classList.contains('error'), before, { timeout: 60_000 });
  const status = await page.textContent('#status');
  if (await page.evaluate(() => document.getElementById('status')!.classList.contains('error'))) throw new Error(`the Lens failed: ${status}`);
}

async function showView(view: string): Promise<void> {
  await page.click(`nav button[data-view="${view}"]`);
  await page.screenshot({ path: join(SHOTS, `lens-${view}.png`), fullPage: true });
}

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  lensServer = await startLens({ port: 0, outdir: join(ARTIFACTS, 'lens') });
  hub = await fixtureHub();
  browser = await launchChromium();
  ({ page, errors } = await openPage(browser, `${lensServer.url}?endpoint=${encodeURIComponent(hub.endpoint)}`, hub));
  await page.setViewportSize({ width: 1200, height: 900 });
});

afterAll(async () => {
  await browser?.close();
  await lensServer?.close();
  await hub?.stop();
});

describe('Tessera Lens', () => {
  it('loads the bundled Jamba hybrid and draws one attention heatmap per head, with hover values', async () => {
    await loadModel('url:jamba-tiny');
    expect(await page.textContent('#status')).toMatch(/jamba: 4 layers \(2 attention, 2 Mamba\) on wasm/);
    expect(await page.locator('#view-attention figure.heatmap').count()).toBe(4);
    const canvas = page.locator('#view-attention figure.heatmap canvas').first();
    const box = (await canvas.boundingBox())!;
    await page.mouse.move(box.x + 3, box.y + box.height - 3); // last query, first key
    const hover = Number(await page.locator('#view-attention figure.heatmap').first().getAttribute('data-hover'));
    expect(hover).toBeGreaterThan(0);
    expect(hover).toBeLessThanOrEqual(1);
    expect(await page.locator('#view-attention figure.heatmap .hover').first().textContent()).toContain(hover.toPrecision(4));
    await showView('attention');
  });

  it('shows Δ, the gate and the SSM state norm of a Mamba layer', async () => {
    const figures = page.locator('#view-mamba figure.heatmap figcaption');
    expect(await figures.allTextContents()).toEqual([
      'layer 0: Δ per channel over time',
      'layer 0: gate SiLU(z)',
      'layer 0: SSM state norm ‖h‖ after each token',
    ]);
    // 128 channels (rows) by the prompt's tokens (columns), 22×4 pixels a cell.
    const tokens = await page.evaluate(() => lens.tessera.attachedTokenizer(lens.state.lm!)!.encodeText((document.getElementById('prompt') as HTMLInputElement).value, { addSpecialTokens: true }).length);
    const size = await page.locator('#view-mamba canvas').first().evaluate((c: HTMLCanvasElement) => [c.width, c.height]);
    expect(size).toEqual([tokens * 22, 128 * 4]);
    await showView('mamba');
  });

  it("shows the logit lens, whose last layer is the model's own top prediction at every position", async () => {
    const rows = page.locator('#lens-table tr');
    expect(await rows.count()).toBe(1 + 4);
    const lastRow = await page.locator('#lens-table tr:last-child td').evaluateAll((tds) => tds.map((td) => Number((td as HTMLElement).dataset.top)));
    const argmax = await page.evaluate(() => {
      const { tf } = lens;
      const lm = lens.state.lm!;
      const text = (document.getElementById('prompt') as HTMLInputElement).value;
      const ids = lens.tessera.attachedTokenizer(lm)!.encodeText(text, { addSpecialTokens: true });
      return tf.tidy(() => {
        const out = lm.forward(tf.tensor2d([ids], [1, ids.length], 'int32'));
        return (out.logits.argMax(-1).arraySync() as number[][])[0]!;
      });
    });
    expect(lastRow).toEqual(argmax);
    await showView('lens');
  });

  it('shows hidden-state norms for the embeddings and every layer', async () => {
    expect(await page.locator('#view-norms figure.heatmap canvas').evaluate((c: HTMLCanvasElement) => c.height / 18)).toBe(5);
    expect(await page.locator('#view-norms figure.line-chart polyline').count()).toBeGreaterThan(1);
    await showView('norms');
  });

  it('ablates a head or a whole mixer through a hook and the logits change; no tensor is left', async () => {
    await page.click('nav button[data-view="ablation"]');
    const before = await page.evaluate(() => lens.tf.memory().numTensors);
    for (const target of ['1:2', '0']) {
      await page.selectOption('#ablation-target', target);
      await page.evaluate(() => document.getElementById('ablation-result')!.replaceChildren());
      await page.click('#ablation-apply');
      await page.waitForSelector('#ablation-delta');
      expect(Number(await page.textContent('#ablation-delta'))).toBeGreaterThan(0);
    }
    await showView('ablation');
    await page.evaluate(() => lens.analyse());
    expect(await page.evaluate(() => lens.tf.memory().numTensors)).toBe(before);
  });

  it('streams generation text from the bundled llama-tiny', async () => {
    await loadModel('url:llama-tiny');
    expect(await page.textContent('#view-mamba')).toBe('This model has no Mamba layers.');
    await page.fill('#max-tokens', '12');
    await page.click('#generate');
    await page.waitForSelector('#output[data-done="true"]', { timeout: 60_000 });
    const { pieces, whole } = await page.evaluate(async () => ({
      pieces: lens.state.pieces,
      whole: await lens.state.lm!.generate((document.getElementById('prompt') as HTMLInputElement).value, { maxNewTokens: 12 }),
    }));
    expect(pieces.length).toBeGreaterThan(1);
    expect(await page.textContent('#output')).toBe(whole);
    await page.screenshot({ path: join(SHOTS, 'lens-generate.png'), fullPage: true });
  });

  it('loads a model by hub name', async () => {
    await loadModel('hub', 'tessera/mamba-tiny');
    expect(await page.textContent('#status')).toMatch(/^mamba: 2 layers \(0 attention, 2 Mamba\)/);
    expect(errors).toEqual([]);
  });
});
