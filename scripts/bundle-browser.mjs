// Bundles a browser entry that imports Tessera's src/browser.ts (the Lens, the browser tests):
// esbuild, ESM with code splitting, and the tfjs-backend-wasm binaries copied beside the bundle.
// Any Node built-in reached from Tessera's code fails the build, naming the importer, except the two
// modules mapped to browser versions (see docs/browser.md#bundling).
import { copyFileSync, mkdirSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Browser versions of the few Node-only modules on the model path. */
const browserMappings = {
  name: 'tessera-browser',
  setup(build) {
    build.onResolve({ filter: /^node:os$/ }, () => ({ path: join(root, 'src/browser-shims/os.ts') }));
    build.onResolve({ filter: /\/loaders\/save\.js$/ }, () => ({ path: join(root, 'src/browser-shims/save.ts') }));
    // Tessera's own code only: packages map their guarded Node imports away with their package.json "browser" fields.
    build.onResolve({ filter: /^(node:|(fs|path|os|crypto|child_process|zlib|url|module|buffer)(\/.*)?$)/ }, (args) =>
      args.importer.startsWith(join(root, 'src'))
        ? { errors: [{ text: `Node built-in '${args.path}' imported by ${args.importer.replace(`${root}/`, '')} is on the browser path` }] }
        : undefined,
    );
  },
};

/**
 * Bundle `entry` into `outdir` (entry named main.js) and copy the wasm backend's binaries there.
 * Returns esbuild's metafile (inputs and outputs with their sizes).
 */
export async function bundleBrowser(entry, outdir, { minify = true } = {}) {
  mkdirSync(outdir, { recursive: true });
  const result = await esbuild.build({
    entryPoints: { main: entry },
    outdir,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify,
    sourcemap: true,
    metafile: true,
    logLevel: 'warning',
    plugins: [browserMappings],
  });
  const wasmDir = join(root, 'node_modules/@tensorflow/tfjs-backend-wasm/dist');
  for (const f of readdirSync(wasmDir).filter((f) => f.endsWith('.wasm'))) copyFileSync(join(wasmDir, f), join(outdir, f));
  return result.metafile;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [entry, outdir] = process.argv.slice(2);
  if (entry === undefined || outdir === undefined) {
    console.error('usage: node scripts/bundle-browser.mjs <entry.ts> <outdir>');
    process.exit(2);
  }
  await bundleBrowser(entry, outdir);
}
