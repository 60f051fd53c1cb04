import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  // Documentation examples import 'tessera' as users do.
  resolve: { alias: { tessera: fileURLToPath(new URL('./src/index.ts', import.meta.url)) } },
  test: {
    include: ['tests/**/*.test.ts'],
    setupFiles: ['tests/setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Each test file gets a fresh process: tfjs keeps global engine state.
    pool: 'forks',
  },
});
