// `tessera download` and loading by hub name through the binary, against the local hub stand-in.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeHub, commitHash, folderFiles } from '../helpers/fake-hub.js';
import { oneLineError, runCli } from './run-cli.js';

const FIX = join(import.meta.dirname, '..', 'fixtures');
const hub = new FakeHub();
const COMMIT = commitHash('cli-bert');
let home: string;

beforeAll(async () => {
  await hub.start();
  hub.addRepo('tessera/bert-tiny', COMMIT, folderFiles(join(FIX, 'bert-tiny')));
  home = mkdtempSync(join(tmpdir(), 'tessera-cli-home-'));
});

afterAll(async () => {
  await hub.stop();
});

/** The child's hub environment: this hub, a fresh cache, no token from the developer's machine. */
function hubEnv(cache: string): Record<string, string | undefined> {
  return { HF_ENDPOINT: hub.endpoint, HF_HUB_CACHE: cache, HF_HOME: home, HF_TOKEN: undefined, HF_HUB_OFFLINE: undefined };
}

describe('tessera download', () => {
  it('snapshots into the cache with one-line progress on a non-terminal stderr, and prints the folder', async () => {
    const cache = mkdtempSync(join(tmpdir(), 'tessera-cli-cache-'));
    const run = await runCli(['download', 'tessera/bert-tiny'], { env: hubEnv(cache) });
    expect(run.code).toBe(0);
    const dir = run.stdout.trim();
    expect(dir).toBe(join(cache, 'models--tessera--bert-tiny', 'snapshots', COMMIT));
    expect(readFileSync(join(dir, 'model.safetensors')).equals(readFileSync(join(FIX, 'bert-tiny', 'model.safetensors')))).toBe(true);
    expect(run.stderr).not.toMatch(/[\r\x1b]/);
    expect(run.stderr).toMatch(/^model\.safetensors \[#{20}\] 100% .* ETA \d\d:\d\d$/m);
    expect(run.stderr).toMatch(/^config\.json \[#{20}\] 100% /m);

    // Cached now: offline works, and inspect by name reads it from the cache.
    const [offline, inspect] = await Promise.all([
      runCli(['download', 'tessera/bert-tiny', '--offline', '--no-progress'], { env: hubEnv(cache) }),
      runCli(['inspect', 'tessera/bert-tiny', '--json', '--offline'], { env: hubEnv(cache) }),
    ]);
    expect(offline.code).toBe(0);
    expect(offline.stdout.trim()).toBe(dir);
    expect(offline.stderr).toBe('');
    expect(inspect.code).toBe(0);
    expect(JSON.parse(inspect.stdout)).toMatchObject({ model: 'tessera/bert-tiny', folder: dir, architecture: 'bert' });
  });

  it('inspect by name fetches config.json only; --revision and a missing model fail in one line', async () => {
    const cache = mkdtempSync(join(tmpdir(), 'tessera-cli-cache-'));
    const before = hub.log.length;
    const inspect = await runCli(['inspect', 'tessera/bert-tiny', '--cache-dir', cache], { env: hubEnv(join(cache, 'unused')) });
    expect(inspect.code).toBe(0);
    const fetched = hub.log.slice(before).filter((r) => r.method === 'GET' && r.url.includes('/resolve/')).map((r) => r.url.split('/').at(-1));
    expect(fetched).toEqual(['config.json']);
    expect(existsSync(join(cache, 'models--tessera--bert-tiny'))).toBe(true);

    const [missing, revision, offline] = await Promise.all([
      runCli(['download', 'tessera/no-such-model'], { env: hubEnv(cache) }),
      runCli(['download', 'tessera/bert-tiny', '--revision', 'no-such-branch'], { env: hubEnv(cache) }),
      runCli(['download', 'tessera/other', '--offline'], { env: hubEnv(cache) }),
    ]);
    for (const r of [missing, revision, offline]) expect(r.code).toBe(1);
    expect(oneLineError(missing.stderr)).toContain('tessera/no-such-model');
    expect(oneLineError(revision.stderr)).toContain('no-such-branch');
    expect(oneLineError(offline.stderr)).toContain('is not in the cache');
  });
});
