/**
 * What the browser tests share: a bundle of a page entry, a static server and the hub stand-in on
 * 127.0.0.1, and headless Chromium driven by playwright-core. The hub stand-in sends no CORS
 * headers (the real hub does), so requests to it are answered through Playwright's routing with
 * the header added; everything else the page asks for must be on the static server.
 */
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, normalize, resolve } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
// @ts-expect-error: a plain .mjs module without types
import { bundleBrowser } from '../../scripts/bundle-browser.mjs';
import { FakeHub, commitHash, folderFiles } from '../helpers/fake-hub.js';
import { fixture } from '../helpers.js';
import { tokenizerJson } from '../generation/text-fixture.js';

export const ROOT = resolve(import.meta.dirname, '../..');
/** Git-ignored output: bundles, screenshots, measured timings. */
export const ARTIFACTS = join(ROOT, 'tmp/browser');

/** Chromium: $CHROMIUM_PATH, else Debian's /usr/bin/chromium. */
export function chromiumPath(): string | undefined {
  const candidates = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser'].filter((p): p is string => p !== undefined && p !== '');
  return candidates.find((p) => existsSync(p));
}

const TYPES: Record<string, string> = {
  '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript', '.css': 'text/css', '.wasm': 'application/wasm',
  '.json': 'application/json', '.map': 'application/json', '.png': 'image/png', '.safetensors': 'application/octet-stream', '.txt': 'text/plain',
};

/** Serve `dirs` (URL prefix -> folder) on 127.0.0.1; unknown paths are 404. */
export async function staticServer(dirs: Record<string, string>): Promise<{ url: string; close: () => Promise<void> }> {
  const server: Server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url!, 'http://127.0.0.1').pathname);
    for (const [prefix, dir] of Object.entries(dirs).sort((a, b) => b[0].length - a[0].length)) {
      if (!path.startsWith(prefix)) continue;
      let file = normalize(join(dir, path.slice(prefix.length)));
      if (!file.startsWith(dir)) break;
      if (existsSync(file) && statSync(file).isDirectory()) file = join(file, 'index.html');
      if (!existsSync(file)) break;
      res.writeHead(200, { 'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream', 'Cache-Control': 'no-store' });
      res.end(readFileSync(file));
      return;
    }
    res.writeHead(404, { 'Content-Type': 'text/plain' });
    res.end(`not found: ${path}`);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

/** The llama-tiny test tokenizer's config (SentencePiece-style, `<s>` first). */
export const LLAMA_TOKENIZER_CONFIG = { tokenizer_class: 'LlamaTokenizer', bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>', add_bos_token: true, model_max_length: 128 };

/** The hub stand-in with the fixtures as `tessera/<name>`, each with the test tokenizer. */
export async function fixtureHub(): Promise<FakeHub> {
  const hub = new FakeHub();
  await hub.start();
  for (const name of ['llama-tiny', 'mamba-tiny', 'jamba-tiny']) {
    const files = folderFiles(fixture(name));
    files.delete('expected.json');
    // The fixtures ship no tokenizer; all three have a 512-token vocabulary, which the test tokenizer fits.
    files.set('tokenizer.json', Buffer.from(JSON.stringify(tokenizerJson())));
    files.set('tokenizer_config.json', Buffer.from(JSON.stringify(LLAMA_TOKENIZER_CONFIG)));
    hub.addRepo(`tessera/${name}`, commitHash(name), files);
  }
  return hub;
}

/** Headless Chromium with WebGPU allowed on its software adapter (where the build has one). */
export async function launchChromium(): Promise<Browser> {
  const executablePath = chromiumPath();
  if (executablePath === undefined) throw new Error('no Chromium: install it (apt-get install -y chromium) or set CHROMIUM_PATH');
  return chromium.launch({
    executablePath,
    args: ['--no-sandbox', '--enable-unsafe-webgpu', '--enable-unsafe-swiftshader', '--use-webgpu-adapter=swiftshader', '--enable-features=Vulkan', '--use-angle=swiftshader'],
  });
}

/** A page that answers requests to `hub` through Node with CORS headers, and records console errors. */
export async function openPage(browser: Browser, url: string, hub?: FakeHub): Promise<{ page: Page; errors: string[]; hubRequests: string[] }> {
  const page = await browser.newPage();
  const errors: string[] = [];
  const hubRequests: string[] = [];
  page.on('pageerror', (err) => errors.push(err.message));
  page.on('console', (msg) => {
    // Loaders probe optional files (generation_config.json, special_tokens_map.json ...): their 404s are expected.
    if (msg.type() === 'error' && !/status of 404/.test(msg.text())) errors.push(msg.text());
  });
  if (hub !== undefined) {
    const cors = { 'Access-Control-Allow-Origin': '*', 'Access-Control-Allow-Headers': '*', 'Access-Control-Expose-Headers': '*' };
    const handler = async (route: import('playwright-core').Route): Promise<void> => {
      const request = route.request();
      if (request.method() === 'OPTIONS') return route.fulfill({ status: 204, headers: cors });
      hubRequests.push(request.url());
      const response = await route.fetch({ maxRedirects: 5 });
      await route.fulfill({ response, headers: { ...response.headers(), ...cors } });
    };
    await page.route(`${hub.endpoint}/**`, handler);
  }
  await page.goto(url);
  await page.waitForSelector('body[data-ready="true"]', { state: 'attached', timeout: 60_000 });
  return { page, errors, hubRequests };
}

/** Bundle `entry` under tmp/browser/<name> and return the folder. */
export async function bundle(entry: string, name: string): Promise<string> {
  const out = join(ARTIFACTS, name);
  mkdirSync(out, { recursive: true });
  await bundleBrowser(entry, out, { minify: false });
  return out;
}
