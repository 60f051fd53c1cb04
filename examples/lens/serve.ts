/**
 * `npm run lens`: build Tessera Lens (esbuild) and serve it on 127.0.0.1 with the bundled tiny
 * models (the test fixtures, plus a tokenizer) under /models/<name>/. `--port N` picks the port
 * (default 5173; 0 for any free one).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, normalize, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
// @ts-expect-error: a plain .mjs module without types
import { bundleBrowser } from '../../scripts/bundle-browser.mjs';
import { TINY_TOKENIZER_CONFIG, tinyTokenizerJson } from './tiny-tokenizer.js';

const HERE = import.meta.dirname;
const ROOT = resolve(HERE, '../..');
/** The bundled models: fixture folders served as they are. */
export const LENS_MODELS = ['llama-tiny', 'mamba-tiny', 'jamba-tiny'];

const TYPES: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.map': 'application/json', '.wasm': 'application/wasm', '.json': 'application/json' };

/** Build the Lens into `outdir` and serve it; resolves with its URL and a close function. */
export async function startLens(options: { port?: number; outdir?: string } = {}): Promise<{ url: string; close: () => Promise<void> }> {
  const outdir = options.outdir ?? join(ROOT, 'tmp/lens');
  await bundleBrowser(join(HERE, 'main.ts'), outdir);
  const virtual = new Map<string, string>([
    ['tokenizer.json', JSON.stringify(tinyTokenizerJson())],
    ['tokenizer_config.json', JSON.stringify(TINY_TOKENIZER_CONFIG)],
  ]);
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://127.0.0.1').pathname);
    const send = (status: number, body: string | Buffer, type = 'text/plain') => {
      res.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-store' });
      res.end(body);
    };
    const model = /^\/models\/([^/]+)\/([^/]+)$/.exec(path);
    if (model !== null) {
      const [, name, file] = model as unknown as [string, string, string];
      if (!LENS_MODELS.includes(name)) return send(404, `no bundled model '${name}'`);
      if (virtual.has(file)) return send(200, virtual.get(file)!, 'application/json');
      const local = join(ROOT, 'tests/fixtures', name, file);
      return existsSync(local) && statSync(local).isFile() && file !== 'expected.json' ? send(200, readFileSync(local), TYPES[extname(file)] ?? 'application/octet-stream') : send(404, 'not found');
    }
    const file = path === '/' ? join(HERE, 'index.html') : normalize(join(outdir, path));
    if (!file.startsWith(outdir) && file !== join(HERE, 'index.html')) return send(404, 'not found');
    if (!existsSync(file) || !statSync(file).isFile()) return send(404, 'not found');
    send(200, readFileSync(file), TYPES[extname(file)] ?? 'application/octet-stream');
  });
  await new Promise<void>((r) => server.listen(options.port ?? 5173, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const at = process.argv.indexOf('--port');
  const port = at === -1 ? 5173 : Number(process.argv[at + 1]);
  const { url } = await startLens({ port });
  console.log(`Tessera Lens: ${url} (Ctrl-C to stop)`);
}
