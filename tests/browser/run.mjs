// npm run test:browser: the browser tests in headless Chromium (tests/browser/*.browser.ts).
// Without Chromium it fails and says how to install it: a browser test that did not run has not
// passed. `npm test` never runs these; CI installs Chromium before calling this (.ci/run).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const candidates = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser'].filter(Boolean);
if (!candidates.some((p) => existsSync(p))) {
  console.error(`test:browser: no Chromium at ${candidates.join(' or ')}: install it (apt-get install -y chromium) or set CHROMIUM_PATH`);
  process.exitCode = 1;
} else {
  const result = spawnSync('npx', ['vitest', 'run', '--config', 'tests/browser/vitest.config.ts', ...process.argv.slice(2)], { stdio: 'inherit' });
  process.exitCode = result.status ?? 1;
}
