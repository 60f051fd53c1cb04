#!/usr/bin/env node
// The `tessera` command. In a checkout (src/ present) it runs the TypeScript source through tsx,
// so the command always matches the code and no build step can be forgotten after `npm ci`; in an
// installed package (no src/) it runs the compiled dist/cli/main.js. TESSERA_CLI=dist forces the
// compiled one (to check a build).
import { existsSync } from 'node:fs';

const source = new URL('../src/cli/main.ts', import.meta.url);
const built = new URL('../dist/cli/main.js', import.meta.url);

async function load() {
  if (process.env.TESSERA_CLI !== 'dist' && existsSync(source)) {
    try {
      const { register } = await import('tsx/esm/api');
      register();
      return await import(source.href);
    } catch (err) {
      // tsx is a devDependency: a checkout installed without it can still run a build.
      if (err?.code !== 'ERR_MODULE_NOT_FOUND' || !existsSync(built)) throw err;
    }
  }
  if (!existsSync(built)) {
    process.stderr.write(`tessera: ${built.pathname} is missing; run 'npm run build' (or install tsx to run from source)\n`);
    process.exit(1);
  }
  return import(built.href);
}

const { main } = await load();
process.exitCode = await main(process.argv.slice(2));
