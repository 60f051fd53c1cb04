// A misbehaving or malicious hub on 127.0.0.1 (forged ETags, traversal names, stalls, error
// statuses) and concurrent loads into one cache, in one process and across real processes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  HubError,
  HubTimeoutError,
  UnsafeHubNameError,
  resolveHubSettings,
  snapshotModel,
  type SnapshotOptions,
} from '../../src/loaders/hub/index.js';
import { withFileLock } from '../../src/loaders/hub/file-lock.js';
import { FakeHub, commitHash, folderFiles, gitBlobSha, sha256 } from '../helpers/fake-hub.js';
import { splitSafetensors } from '../helpers/split-safetensors.js';

const FIX = join(import.meta.dirname, '..', 'fixtures');
const hub = new FakeHub();
const bertFiles = folderFiles(join(FIX, 'bert-tiny'));
const WEIGHTS = bertFiles.get('model.safetensors')!;
const REPO = 'tessera/bert-tiny';

/** A cache folder inside its own parent, so that a write beside the cache would be seen. */
function sandbox(): { parent: string; cache: string } {
  const parent = mkdtempSync(join(tmpdir(), 'tessera-hostile-'));
  const cache = join(parent, 'cache');
  mkdirSync(cache);
  return { parent, cache };
}

/** Every file under `dir`, as paths relative to it. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => !e.isDirectory())
    .map((e) => join(e.parentPath, e.name).slice(dir.length + 1))
    .sort();
}

function opts(cache: string, extra: SnapshotOptions = {}): SnapshotOptions {
  return { endpoint: hub.endpoint, cacheDir: cache, progress: false, retryDelayMs: 1, ...extra };
}

const fail = (p: Promise<unknown>): Promise<Error> =>
  p.then(
    () => {
      throw new Error('expected a failure');
    },
    (e: Error) => e,
  );

beforeAll(async () => {
  await hub.start();
  const bert = hub.addRepo(REPO, commitHash('bert-a'), bertFiles);
  bert.refs.set('refs/pr/1', commitHash('bert-a'));
  const llama = folderFiles(join(FIX, 'llama-tiny'));
  const sharded = new Map([...llama].filter(([k]) => k !== 'model.safetensors'));
  for (const [k, v] of splitSafetensors(llama.get('model.safetensors')!)) sharded.set(k, v);
  const index = JSON.parse(sharded.get('model.safetensors.index.json')!.toString()) as { weight_map: Record<string, string> };
  const [first] = Object.keys(index.weight_map);
  const withShard = (shard: string): Map<string, Buffer> =>
    new Map([...sharded, ['model.safetensors.index.json', Buffer.from(JSON.stringify({ weight_map: { ...index.weight_map, [first!]: shard } }))]]);
  hub.addRepo('tessera/shard-escape', commitHash('escape'), withShard('../outside.safetensors'));
  hub.addRepo('tessera/shard-absolute', commitHash('absolute'), withShard('/etc/passwd'));
  hub.addRepo('tessera/shard-unlisted', commitHash('unlisted'), withShard('not-in-repo.safetensors'));
});

afterAll(() => hub.stop());

describe('a hub that names files: ETags, revisions, shard names', () => {
  it.each([
    ['config.json', '"../../../../escaped"'],
    ['config.json', '"abc123"'],
    ['config.json', `"${'0'.repeat(39)}/"`],
    ['model.safetensors', '"../../x"'],
    ['model.safetensors', `W/"${'A'.repeat(64)}"`],
  ])('refuses the forged ETag of %s (%s) and writes nothing anywhere', async (file, etag) => {
    const { parent, cache } = sandbox();
    hub.forgedEtag.set(`${REPO}/${file}`, etag);
    try {
      const err = await fail(snapshotModel(REPO, opts(cache)));
      expect(err).toBeInstanceOf(UnsafeHubNameError);
      expect(err.message).toContain('is not a git sha1 or sha256 content hash');
      expect(readdirSync(parent)).toEqual(['cache']);
      expect(filesUnder(cache).filter((f) => f.includes('blobs'))).toEqual(file === 'config.json' ? [] : [expect.stringMatching(/blobs\/[0-9a-f]{40}$/)]);
    } finally {
      hub.forgedEtag.delete(`${REPO}/${file}`);
    }
  });

  it('refuses a well-formed ETag that the bytes do not hash to, and keeps nothing under it', async () => {
    const { cache } = sandbox();
    const other = sha256(Buffer.from('something else'));
    hub.forgedEtag.set(`${REPO}/model.safetensors`, `"${other}"`);
    try {
      const err = await fail(snapshotModel(REPO, opts(cache)));
      expect(err.message).toMatch(new RegExp(`hash to ${sha256(WEIGHTS)} but the hub announced ${other}`));
      // (its lock file under .locks/ stays, as huggingface_hub's do)
      expect(filesUnder(join(cache, 'models--tessera--bert-tiny')).some((f) => f.includes(other))).toBe(false);
    } finally {
      hub.forgedEtag.delete(`${REPO}/model.safetensors`);
    }
  });

  it.each(['../../../../tmp/x', '..', 'main/../../x', '/abs', 'a\\b', 'with space', 'x.lock', '-rf', 'a//b'])(
    "refuses revision '%s' before any request, online and offline",
    async (revision) => {
      const { parent, cache } = sandbox();
      const before = hub.log.length;
      for (const offline of [false, true]) {
        const err = await fail(snapshotModel(REPO, opts(cache, { revision, offline })));
        expect(err).toBeInstanceOf(UnsafeHubNameError);
        expect(err.message).toContain(`'${revision}' is not a revision`);
      }
      expect(hub.log.length).toBe(before);
      expect(readdirSync(parent)).toEqual(['cache']);
      expect(filesUnder(cache)).toEqual([]);
    },
  );

  it('offline, never reads a ref file outside the cache', async () => {
    const { parent, cache } = sandbox();
    const commit = commitHash('planted');
    writeFileSync(join(parent, 'planted'), commit);
    mkdirSync(join(cache, 'models--tessera--bert-tiny', 'snapshots', commit), { recursive: true });
    const err = await fail(snapshotModel(REPO, opts(cache, { revision: '../../planted', offline: true })));
    expect(err).toBeInstanceOf(UnsafeHubNameError);
  });

  it('accepts a revision with slashes (refs/pr/1) and records it inside refs/', async () => {
    const { parent, cache } = sandbox();
    await snapshotModel(REPO, opts(cache, { revision: 'refs/pr/1', weights: false }));
    expect(readFileSync(join(cache, 'models--tessera--bert-tiny', 'refs', 'refs', 'pr', '1'), 'utf8')).toBe(commitHash('bert-a'));
    expect(readdirSync(parent)).toEqual(['cache']);
    // and offline afterwards, from that ref
    expect(await snapshotModel(REPO, opts(cache, { revision: 'refs/pr/1', weights: false, offline: true }))).toContain(commitHash('bert-a'));
  });

  it.each([
    ['tessera/shard-escape', "'../outside.safetensors'"],
    ['tessera/shard-absolute', "'/etc/passwd'"],
  ])('%s: refuses the shard name %s from the index before requesting it', async (repo, shown) => {
    const { parent, cache } = sandbox();
    const before = hub.log.length;
    const err = await fail(snapshotModel(repo, opts(cache)));
    expect(err).toBeInstanceOf(UnsafeHubNameError);
    expect(err.message).toContain(`refusing unsafe file path ${shown} from model.safetensors.index.json (shard of tensor`);
    const asked = hub.log.slice(before).map((r) => r.url);
    expect(asked.some((u) => u.includes('outside') || u.includes('passwd'))).toBe(false);
    expect(readdirSync(parent)).toEqual(['cache']);
  });

  it('refuses a shard that the repo listing does not have, without asking for it', async () => {
    const { cache } = sandbox();
    const before = hub.log.length;
    const err = await fail(snapshotModel('tessera/shard-unlisted', opts(cache)));
    expect(err).toBeInstanceOf(HubError);
    expect(err.message).toContain("has no file 'not-in-repo.safetensors'");
    expect(hub.log.slice(before).some((r) => r.url.includes('not-in-repo'))).toBe(false);
  });

  it.each(['../x', 'org/../x', 'a/b/c', 'org/na--me', 'x.git', '-x', 'a'.repeat(97)])("refuses the model name '%s'", async (name) => {
    const { cache } = sandbox();
    expect(await fail(snapshotModel(name, opts(cache)))).toBeInstanceOf(UnsafeHubNameError);
  });
});

describe('a hub that stalls, drops and fails', () => {
  it('times out a server that never sends headers, after the configured retries', async () => {
    const { cache } = sandbox();
    hub.stallHeaders.add(`${REPO}/config.json`);
    const before = hub.log.length;
    const started = Date.now();
    try {
      const err = await fail(snapshotModel(REPO, opts(cache, { timeoutMs: 150, retries: 1 })));
      expect(err).toBeInstanceOf(HubTimeoutError);
      expect(err.message).toMatch(/did not answer for file 'config\.json' of model 'tessera\/bert-tiny' within 150 ms \(2 attempts\)/);
      expect(hub.log.slice(before).filter((r) => r.url.endsWith('/config.json')).length).toBe(2);
      expect(Date.now() - started).toBeLessThan(5000);
    } finally {
      hub.stallHeaders.delete(`${REPO}/config.json`);
    }
  });

  it('times out a stalled model-info request, and falls back to a complete cached snapshot', async () => {
    const { cache } = sandbox();
    const dir = await snapshotModel(REPO, opts(cache));
    hub.stallHeaders.add(`api:${REPO}`);
    try {
      const err = await fail(snapshotModel(REPO, opts(cache, { timeoutMs: 100, retries: 0, revision: commitHash('none') })));
      expect(err).toBeInstanceOf(HubTimeoutError);
      expect(err.message).toContain("did not answer for model 'tessera/bert-tiny' within 100 ms");
      expect(await snapshotModel(REPO, opts(cache, { timeoutMs: 100, retries: 0, refresh: true }))).toBe(dir);
    } finally {
      hub.stallHeaders.delete(`api:${REPO}`);
    }
  });

  it('resumes a body that stops arriving, once the idle time-out passes', async () => {
    const { cache } = sandbox();
    hub.stallBodyOnce.add(`${REPO}/model.safetensors`);
    const before = hub.log.length;
    const dir = await snapshotModel(REPO, opts(cache, { timeoutMs: 300 }));
    expect(readFileSync(join(dir, 'model.safetensors')).equals(WEIGHTS)).toBe(true);
    const ranges = hub.log.slice(before).filter((r) => r.server === 'cdn').map((r) => r.range);
    expect(ranges).toEqual([undefined, `bytes=${Math.floor(WEIGHTS.length / 2)}-`]);
  });

  it('retries HTTP 500, 503 and 429 and then succeeds', async () => {
    const { cache } = sandbox();
    hub.failFirst.set(`api:${REPO}`, [429, 500]);
    hub.failFirst.set(`${REPO}/config.json`, [503]);
    hub.failFirst.set(`${REPO}/model.safetensors`, [500, 502]);
    const dir = await snapshotModel(REPO, opts(cache));
    expect(readFileSync(join(dir, 'model.safetensors')).equals(WEIGHTS)).toBe(true);
    expect([...hub.failFirst.values()].every((v) => v.length === 0)).toBe(true);
  });

  it('gives up after the configured retries on a persistent 500, naming the status', async () => {
    const { cache } = sandbox();
    hub.failFirst.set(`${REPO}/config.json`, [500, 500, 500, 500]);
    const before = hub.log.length;
    try {
      const err = await fail(snapshotModel(REPO, opts(cache, { retries: 2 })));
      expect(err).toBeInstanceOf(HubError);
      expect(err.message).toContain('HTTP 500');
      expect(hub.log.slice(before).filter((r) => r.url.endsWith('/config.json')).length).toBe(3);
    } finally {
      hub.failFirst.delete(`${REPO}/config.json`);
    }
  });

  it('does not retry a 404', async () => {
    const { cache } = sandbox();
    const before = hub.log.length;
    await fail(snapshotModel('tessera/none', opts(cache)));
    expect(hub.log.length - before).toBe(1);
  });

  it('checks its options and the timeout variables', () => {
    expect(() => resolveHubSettings({ timeoutMs: 0 })).toThrow(/timeoutMs must be a positive number of ms, got 0/);
    expect(() => resolveHubSettings({ retries: 1.5 })).toThrow(/retries must be a non-negative integer/);
    process.env.HF_HUB_DOWNLOAD_TIMEOUT = '2.5';
    process.env.HF_HUB_ETAG_TIMEOUT = 'soon';
    try {
      expect(() => resolveHubSettings({})).toThrow(/HF_HUB_ETAG_TIMEOUT=soon is not a positive number of seconds/);
      delete process.env.HF_HUB_ETAG_TIMEOUT;
      const s = resolveHubSettings({});
      expect([s.downloadTimeoutMs, s.metadataTimeoutMs, s.retries]).toEqual([2500, 10_000, 5]);
    } finally {
      delete process.env.HF_HUB_DOWNLOAD_TIMEOUT;
      delete process.env.HF_HUB_ETAG_TIMEOUT;
    }
  });
});

/** Checks shared by the race tests: every blob is named by its hash, nothing half-made is left. */
function expectCleanCache(cache: string): void {
  const repo = join(cache, 'models--tessera--bert-tiny');
  const blobs = readdirSync(join(repo, 'blobs'));
  expect(blobs.filter((b) => !/^[0-9a-f]{40}$|^[0-9a-f]{64}$/.test(b))).toEqual([]);
  for (const b of blobs) {
    const data = readFileSync(join(repo, 'blobs', b));
    expect(b.length === 64 ? sha256(data) : gitBlobSha(data)).toBe(b);
  }
  expect(filesUnder(repo).filter((f) => f.endsWith('.tmp') || f.endsWith('.incomplete'))).toEqual([]);
}

describe('concurrent loads into one cache', () => {
  it('in one process: four loads download each file once and agree', async () => {
    const { cache } = sandbox();
    hub.slowBody.set(`${REPO}/model.safetensors`, 15);
    const before = hub.log.length;
    try {
      const dirs = await Promise.all([1, 2, 3, 4].map(() => snapshotModel(REPO, opts(cache))));
      for (const dir of dirs) expect(readFileSync(join(dir, 'model.safetensors')).equals(WEIGHTS)).toBe(true);
      expect(hub.log.slice(before).filter((r) => r.server === 'cdn').length).toBe(1);
      expectCleanCache(cache);
    } finally {
      hub.slowBody.delete(`${REPO}/model.safetensors`);
    }
  });

  it('in three processes at once, repeated: one download, right bytes everywhere, no raw errors', async () => {
    const child = join(import.meta.dirname, '..', 'helpers', 'hub-load-child.ts');
    hub.slowBody.set(`${REPO}/model.safetensors`, 10);
    try {
      for (let round = 0; round < 4; round++) {
        const { cache } = sandbox();
        const before = hub.log.length;
        const runs = [0, 1, 2].map(() => runChild(spawn(process.execPath, ['--import', 'tsx', child, REPO, hub.endpoint, cache, 'model.safetensors', 'config.json'])));
        const results = await Promise.all(runs);
        for (const r of results) {
          expect(r.code, r.stderr).toBe(0);
          const { hashes } = JSON.parse(r.stdout) as { hashes: Record<string, string> };
          expect(hashes['model.safetensors']).toBe(sha256(WEIGHTS));
          expect(hashes['config.json']).toBe(sha256(bertFiles.get('config.json')!));
        }
        expect(hub.log.slice(before).filter((r) => r.server === 'cdn').length).toBe(1);
        expectCleanCache(cache);
      }
    } finally {
      hub.slowBody.delete(`${REPO}/model.safetensors`);
    }
  }, 60_000);

  it("waits for a lock held through flock(2), as Python's huggingface_hub takes it", async () => {
    const { cache } = sandbox();
    const lock = join(cache, '.locks', 'models--tessera--bert-tiny', `${sha256(WEIGHTS)}.lock`);
    mkdirSync(join(cache, '.locks', 'models--tessera--bert-tiny'), { recursive: true });
    // flock(1) takes the same flock(2) lock that Python's filelock takes.
    const holder = spawn('flock', ['--exclusive', lock, '--command', 'echo held; exec cat >/dev/null']);
    await new Promise<void>((r) => holder.stdout.once('data', () => r()));
    const said: string[] = [];
    const before = hub.log.length;
    const load = snapshotModel(REPO, opts(cache, { progress: { isTTY: true, write: (s: string) => said.push(s) } }));
    await new Promise((r) => setTimeout(r, 700));
    expect(hub.log.slice(before).filter((r) => r.server === 'cdn').length).toBe(0);
    expect(said.join('')).toContain('waiting for another process that is downloading into the cache');
    holder.stdin.end();
    const dir = await load;
    expect(readFileSync(join(dir, 'model.safetensors')).equals(WEIGHTS)).toBe(true);
    expect(existsSync(lock)).toBe(true);
  });

  it('without flock, an owner file keeps holders apart and a dead owner does not block', async () => {
    const { cache } = sandbox();
    const lock = join(cache, 'x.lock');
    const events: string[] = [];
    const hold = (who: string) =>
      withFileLock(
        lock,
        async () => {
          events.push(`${who}+`);
          await new Promise((r) => setTimeout(r, 50));
          events.push(`${who}-`);
        },
        { timeoutMs: 5000, method: 'owner-file' },
      );
    await Promise.all([hold('a'), hold('b'), hold('c')]);
    expect(events).toEqual(['a+', 'a-', 'b+', 'b-', 'c+', 'c-']);
    // a process that died holding it (pid 2^22 + 1 is above Linux's pid_max default)
    writeFileSync(`${lock}.owner`, `${(await import('node:os')).hostname()} ${2 ** 22 + 1}`);
    await withFileLock(lock, async () => events.push('d'), { timeoutMs: 2000, method: 'owner-file' });
    expect(events.at(-1)).toBe('d');
    expect(existsSync(`${lock}.owner`)).toBe(false);
    // a live owner: the wait ends with a clear error
    writeFileSync(`${lock}.owner`, `${(await import('node:os')).hostname()} ${process.pid}`);
    const err = await fail(withFileLock(lock, async () => undefined, { timeoutMs: 300, method: 'owner-file' }));
    expect(err.message).toMatch(/held the download lock .*x\.lock\.owner for more than 300 ms/);
  });
});

function runChild(p: ChildProcess): Promise<{ code: number | null; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  p.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  p.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => p.once('close', (code) => resolve({ code, stdout, stderr })));
}
