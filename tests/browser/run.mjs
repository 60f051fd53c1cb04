// npm run test:browser: the browser tests in headless Chromium (tests/browser/*.browser.ts).
// Without Chromium it says so and runs nothing (exit 0), so machines without a browser are not
// failed by it; CI installs Chromium first (.ci/run).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const candidates = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser'].filter(Boolean);
if (!candidates.some((p) => existsSync(p))) {
  console.log(`test:browser: no Chromium at ${candidates.join(' or ')}; browser tests not run (apt-get install -y chromium, or set CHROMIUM_PATH)`);
  process.exit(0);
}
const result = spawnSync('npx', ['vitest', 'run', '--config', 'tests/browser/vitest.config.ts', ...process.argv.slice(2)], { stdio: 'inherit' });
process.exit(result.status ?? 1);
