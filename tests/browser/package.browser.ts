// The package as a user's bundler sees it: `npm run build` output under node_modules/tessera,
// imported as 'tessera' and bundled by plain esbuild for the browser (no Tessera plugin). The
// 'browser' export condition and the package's "browser" field must give dist/browser.js with
// the two browser swaps and nothing Node-only; the bundle then loads a model in Chromium.
import { execFileSync } from 'node:child_process';
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as esbuild from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { fixture, loadExpected } from '../helpers.js';
import { ROOT, launchChromium, openPage, staticServer } from './harness.js';

// Outside the repository: inside it, 'tessera' would resolve to the repository's own package.json.
const consumer = mkdtempSync(join(tmpdir(), 'tessera-consumer-'));
const pkg = join(consumer, 'node_modules', 'tessera');
let metafile: esbuild.Metafile;
let browser: Browser;

beforeAll(async () => {
  mkdirSync(pkg, { recursive: true });
  execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json', '--outDir', join(pkg, 'dist')], { cwd: ROOT, stdio: 'pipe' });
  copyFileSync(join(ROOT, 'package.json'), join(pkg, 'package.json'));
  writeFileSync(join(consumer, 'tsconfig.json'), '{}');
  writeFileSync(join(consumer, 'entry.js'), [
    "import * as tf from '@tensorflow/tfjs-core';",
    "import { AutoCausalLM, initBackend, disposeOutput } from 'tessera';",
    'globalThis.run = async (url, ids) => {',
    "  await initBackend({ backend: 'wasm', wasmPaths: '/' });",
    '  const lm = await AutoCausalLM.fromUrl(url);',
    "  const out = lm.forward(tf.tensor2d(ids, undefined, 'int32'));",
    '  const logits = await out.logits.array();',
    '  disposeOutput(out);',
    '  lm.dispose();',
    '  return logits;',
    '};',
    "document.body.dataset.ready = 'true';",
  ].join('\n'));
  const out = join(consumer, 'out');
  const result = await esbuild.build({
    entryPoints: [join(consumer, 'entry.js')], bundle: true, format: 'esm', platform: 'browser', splitting: true,
    outdir: out, metafile: true, logLevel: 'silent', absWorkingDir: consumer, nodePaths: [join(ROOT, 'node_modules')],
  });
  metafile = result.metafile;
  const wasm = join(ROOT, 'node_modules/@tensorflow/tfjs-backend-wasm/dist');
  for (const f of readdirSync(wasm).filter((f) => f.endsWith('.wasm'))) copyFileSync(join(wasm, f), join(out, f));
  writeFileSync(join(out, 'index.html'), '<!doctype html><body><script type="module" src="./entry.js"></script></body>');
  mkdirSync(join(out, 'models'));
  cpSync(fixture('llama-tiny'), join(out, 'models', 'llama-tiny'), { recursive: true });
  browser = await launchChromium();
}, 300_000);

afterAll(async () => {
  await browser?.close();
  rmSync(consumer, { recursive: true, force: true });
});

describe("the built package in a user's browser bundle", () => {
  it('resolves to dist/browser.js with the browser swaps and no Node-only module', () => {
    const inputs = Object.keys(metafile.inputs).filter((f) => f.includes('node_modules/tessera/dist/'));
    const dist = (p: string) => `node_modules/tessera/dist/${p}`;
    expect(inputs).toContain(dist('browser.js'));
    expect(inputs).toContain(dist('browser-shims/os.js'));
    expect(inputs).toContain(dist('browser-shims/save.js'));
    for (const nodeOnly of ['index.js', 'loaders/auto.js', 'loaders/save.js', 'loaders/hub/snapshot.js', 'kernels/backend.js', 'kernels/native/addon.js']) {
      expect(inputs).not.toContain(dist(nodeOnly));
    }
  });

  it('loads llama-tiny from a URL in Chromium and matches the HF logits to 1e-4', async () => {
    const server = await staticServer({ '/': join(consumer, 'out') });
    try {
      const { page, errors } = await openPage(browser, `${server.url}/`);
      const expected = loadExpected('llama-tiny');
      const logits = (await page.evaluate(
        ([url, ids]) => (globalThis as unknown as { run: (u: string, i: number[][]) => Promise<number[][][]> }).run(url as string, ids as number[][]),
        [`${server.url}/models/llama-tiny`, expected.input_ids] as const,
      )) as number[][][];
      let worst = 0;
      logits.forEach((row, i) => row.forEach((col, j) => col.forEach((v, k) => { worst = Math.max(worst, Math.abs(v - expected.logits![i]![j]![k]!)); })));
      expect(worst).toBeLessThan(1e-4);
      expect(errors).toEqual([]);
    } finally {
      await server.close();
    }
  });
});
