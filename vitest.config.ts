import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const alias = { tessera: fileURLToPath(new URL('./src/index.ts', import.meta.url)) };
const shared = {
  setupFiles: ['tests/setup.ts'],
  testTimeout: 120_000,
  hookTimeout: 120_000,
  // Each test file gets a fresh process: tfjs keeps global engine state.
  pool: 'forks' as const,
};

// Where the optional native addon was built, the HF parity checks (outputs and gradients) run a
// second time on it.
const nativeBuilt = existsSync(fileURLToPath(new URL('./native/build/Release/tessera_native.node', import.meta.url)));

export default defineConfig({
  // Documentation examples import 'tessera' as users do.
  resolve: { alias },
  test: {
    projects: [
      { resolve: { alias }, test: { ...shared, name: 'wasm', include: ['tests/**/*.test.ts'] } },
      ...(nativeBuilt
        ? [
            {
              resolve: { alias },
              test: {
                ...shared,
                name: 'native',
                include: ['tests/architectures/*.test.ts', 'tests/loaders/safetensors.test.ts', 'tests/models/*.test.ts', 'tests/generation/*.test.ts', 'tests/training/grad-parity.test.ts'],
                env: { TESSERA_BACKEND: 'native' },
              },
            },
          ]
        : []),
    ],
  },
});
