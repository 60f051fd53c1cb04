import { defineConfig } from 'vitest/config';

// The browser tests (npm run test:browser): Node drives headless Chromium through playwright-core.
// Kept out of `npm test`, whose config includes only *.test.ts files.
export default defineConfig({
  test: {
    include: ['tests/browser/**/*.browser.ts'],
    testTimeout: 120_000,
    hookTimeout: 180_000,
    pool: 'forks',
    // One Chromium at a time: the machine's two cores are shared.
    fileParallelism: false,
  },
});
