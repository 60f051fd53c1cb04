import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, lstatSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DownloadError,
  HubAuthError,
  HubConnectionError,
  ModelNotFoundError,
  OfflineCacheMissError,
  snapshotModel,
} from '../../src/loaders/hub/index.js';
import { FakeHub, commitHash, folderFiles, gitBlobSha, sha256 } from '../helpers/fake-hub.js';
import { splitSafetensors } from '../helpers/split-safetensors.js';

const FIX = join(import.meta.dirname, '..', 'fixtures');
const hub = new FakeHub();
const BERT_A = commitHash('bert-a');
const BERT_B = commitHash('bert-b');
const bertFiles = folderFiles(join(FIX, 'bert-tiny'));
const bertConfigB = Buffer.from(JSON.stringify({ ...JSON.parse(bertFiles.get('config.json')!.toString()), tessera_note: 'dev branch' }, null, 2));

const ENV_KEYS = ['HF_HUB_CACHE', 'HF_HOME', 'HF_ENDPOINT', 'HF_TOKEN', 'HF_HUB_OFFLINE', 'HUGGING_FACE_HUB_TOKEN', 'HF_TOKEN_PATH'];
const savedEnv = Object.fromEntries(ENV_KEYS.map((k) => [k, process.env[k]]));

function freshCache(): string {
  return mkdtempSync(join(tmpdir(), 'tessera-hub-'));
}

beforeAll(async () => {
  for (const k of ENV_KEYS) delete process.env[k];
  // A fake HOME-less token location so a developer's real token never leaks into the tests.
  process.env.HF_HOME = freshCache();
  await hub.start();
  const bert = hub.addRepo('tessera/bert-tiny', BERT_A, bertFiles);
  bert.commits.set(BERT_B, new Map([...bertFiles, ['config.json', bertConfigB]]));
  bert.refs.set('dev', BERT_B);
  hub.addRepo('tessera/mamba-ssm-tiny', commitHash('mamba-ssm'), folderFiles(join(FIX, 'mamba-ssm-tiny')));
  hub.addRepo('tessera/gated-bert', commitHash('gated'), bertFiles, { gated: true });
  hub.addRepo('tessera/private-bert', commitHash('private'), bertFiles, { private: true });
  const llama = folderFiles(join(FIX, 'llama-tiny'));
  const sharded = new Map([...llama].filter(([k]) => k !== 'model.safetensors'));
  for (const [k, v] of splitSafetensors(llama.get('model.safetensors')!)) sharded.set(k, v);
  hub.addRepo('tessera/llama-sharded', commitHash('llama'), sharded);
});

afterEach(() => {
  for (const k of ENV_KEYS) if (k !== 'HF_HOME') delete process.env[k];
});

afterAll(async () => {
  await hub.stop();
  for (const k of ENV_KEYS) {
    if (savedEnv[k] === undefined) delete process.env[k];
    else process.env[k] = savedEnv[k];
  }
});

function requestsSince(n: number) {
  return hub.log.slice(n);
}

describe('snapshotModel: download into the Python-compatible cache', () => {
  const cache = freshCache();

  it('downloads only the needed files with huggingface_hub layout', async () => {
    process.env.HF_HUB_CACHE = cache;
    const before = hub.log.length;
    const dir = await snapshotModel('tessera/bert-tiny', { endpoint: hub.endpoint });
    const repoDir = join(cache, 'models--tessera--bert-tiny');
    expect(dir).toBe(join(repoDir, 'snapshots', BERT_A));
    expect(readFileSync(join(repoDir, 'refs', 'main'), 'utf8')).toBe(BERT_A);

    const st = bertFiles.get('model.safetensors')!;
    const cfg = bertFiles.get('config.json')!;
    const blobs = readdirSync(join(repoDir, 'blobs')).sort();
    expect(blobs).toContain(sha256(st)); // LFS file: named by its sha256 (X-Linked-Etag)
    expect(blobs).toContain(gitBlobSha(cfg)); // regular file: named by its git blob id (ETag)
    expect(blobs.some((b) => b.endsWith('.incomplete'))).toBe(false);

    const link = join(dir, 'model.safetensors');
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(readlinkSync(link)).toBe(`../../blobs/${sha256(st)}`);
    expect(readlinkSync(join(dir, 'config.json'))).toBe(`../../blobs/${gitBlobSha(cfg)}`);
    expect(readFileSync(link).equals(st)).toBe(true);

    // config + weights + the four tokenizer files; expected.json is never asked for.
    expect(readdirSync(dir).sort()).toEqual(['config.json', 'model.safetensors', 'special_tokens_map.json', 'tokenizer.json', 'tokenizer_config.json', 'vocab.txt']);
    const reqs = requestsSince(before);
    expect(reqs.some((r) => r.url.includes('expected.json'))).toBe(false);
    expect(reqs.filter((r) => r.url.startsWith('/api/models/tessera/bert-tiny/revision/main'))).toHaveLength(1);
    expect(reqs.some((r) => r.url.startsWith('/cdn-lfs/'))).toBe(true); // followed the LFS redirect
  });

  it('uses $HF_HOME/hub when HF_HUB_CACHE is not set, and HF_ENDPOINT', async () => {
    process.env.HF_ENDPOINT = hub.endpoint;
    const dir = await snapshotModel('tessera/mamba-ssm-tiny');
    expect(dir).toBe(join(process.env.HF_HOME!, 'hub', 'models--tessera--mamba-ssm-tiny', 'snapshots', commitHash('mamba-ssm')));
    expect(existsSync(join(dir, 'pytorch_model.bin'))).toBe(true);
  });

  it('makes no request on the second load', async () => {
    const before = hub.log.length;
    const dir = await snapshotModel('tessera/bert-tiny', { endpoint: hub.endpoint, cacheDir: cache });
    expect(dir).toBe(join(cache, 'models--tessera--bert-tiny', 'snapshots', BERT_A));
    expect(hub.log.length).toBe(before);
  });

  it('works offline from the cache, and names the cache path for a model not in it', async () => {
    process.env.HF_HUB_OFFLINE = '1';
    process.env.HF_ENDPOINT = 'http://127.0.0.1:9'; // would fail if anything were fetched
    const before = hub.log.length;
    const dir = await snapshotModel('tessera/bert-tiny', { cacheDir: cache });
    expect(existsSync(join(dir, 'model.safetensors'))).toBe(true);
    const err = await snapshotModel('tessera/mamba-ssm-tiny', { cacheDir: cache }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OfflineCacheMissError);
    expect((err as Error).message).toContain(join(cache, 'models--tessera--mamba-ssm-tiny', 'refs', 'main'));
    expect((err as Error).message).toMatch(/HF_HUB_OFFLINE/);
    expect(hub.log.length).toBe(before);
  });

  it('resolves another branch to its own snapshot, sharing unchanged blobs', async () => {
    process.env.HF_ENDPOINT = hub.endpoint;
    const dir = await snapshotModel('tessera/bert-tiny', { revision: 'dev', cacheDir: cache });
    const repoDir = join(cache, 'models--tessera--bert-tiny');
    expect(dir).toBe(join(repoDir, 'snapshots', BERT_B));
    expect(readFileSync(join(repoDir, 'refs', 'dev'), 'utf8')).toBe(BERT_B);
    expect(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')).tessera_note).toBe('dev branch');
    expect(readlinkSync(join(dir, 'model.safetensors'))).toBe(`../../blobs/${sha256(bertFiles.get('model.safetensors')!)}`);
    // One safetensors blob for both commits, two config blobs.
    const blobs = readdirSync(join(repoDir, 'blobs'));
    expect(blobs.filter((b) => b === sha256(bertFiles.get('model.safetensors')!))).toHaveLength(1);
    expect(blobs).toContain(gitBlobSha(bertConfigB));

    // A commit hash needs no refs lookup and no request once cached; offline a branch resolves through refs/.
    const before = hub.log.length;
    expect(await snapshotModel('tessera/bert-tiny', { revision: BERT_A, cacheDir: cache })).toBe(join(repoDir, 'snapshots', BERT_A));
    expect(await snapshotModel('tessera/bert-tiny', { revision: 'dev', cacheDir: cache, offline: true })).toBe(dir);
    expect(hub.log.length).toBe(before);

    // The branch moves on the hub: the cache keeps answering until asked to refresh.
    const bert = hub.repos.get('tessera/bert-tiny')!;
    bert.refs.set('dev', BERT_A);
    try {
      expect(await snapshotModel('tessera/bert-tiny', { revision: 'dev', cacheDir: cache })).toBe(dir);
      expect(await snapshotModel('tessera/bert-tiny', { revision: 'dev', cacheDir: cache, refresh: true })).toBe(join(repoDir, 'snapshots', BERT_A));
      expect(readFileSync(join(repoDir, 'refs', 'dev'), 'utf8')).toBe(BERT_A);
    } finally {
      bert.refs.set('dev', BERT_B);
    }
  });
});

describe('snapshotModel: interrupted and corrupted downloads', () => {
  it('leaves no trusted blob when the server dies mid-file, and the next load resumes', async () => {
    const cache = freshCache();
    const st = bertFiles.get('model.safetensors')!;
    const blob = join(cache, 'models--tessera--bert-tiny', 'blobs', sha256(st));
    hub.cutOnce.add('tessera/bert-tiny/model.safetensors');
    const err = await snapshotModel('tessera/bert-tiny', { endpoint: hub.endpoint, cacheDir: cache, retries: 0 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DownloadError);
    expect((err as Error).message).toMatch(/model\.safetensors.*interrupted after \d+ of 436936 bytes.*run again to resume/);
    expect(existsSync(blob)).toBe(false);
    expect(existsSync(join(cache, 'models--tessera--bert-tiny', 'snapshots', BERT_A, 'model.safetensors'))).toBe(false);
    const partial = readFileSync(`${blob}.incomplete`);
    expect(partial.length).toBeGreaterThan(0);
    expect(partial.length).toBeLessThan(st.length);

    const before = hub.log.length;
    const dir = await snapshotModel('tessera/bert-tiny', { endpoint: hub.endpoint, cacheDir: cache });
    expect(readFileSync(join(dir, 'model.safetensors')).equals(st)).toBe(true);
    expect(existsSync(`${blob}.incomplete`)).toBe(false);
    const resumed = requestsSince(before).filter((r) => r.url.startsWith('/cdn-lfs/') && r.range !== undefined);
    expect(resumed.map((r) => r.range)).toEqual([`bytes=${partial.length}-`]);
  });

  it('retries an interrupted transfer within one call by default', async () => {
    const cache = freshCache();
    hub.cutOnce.add('tessera/bert-tiny/model.safetensors');
    const dir = await snapshotModel('tessera/bert-tiny', { endpoint: hub.endpoint, cacheDir: cache });
    expect(readFileSync(join(dir, 'model.safetensors')).equals(bertFiles.get('model.safetensors')!)).toBe(true);
    expect(hub.cutOnce.size).toBe(0);
  });

  it('rejects bytes that do not match the ETag and keeps nothing', async () => {
    const cache = freshCache();
    hub.corruptOnce.add('tessera/bert-tiny/model.safetensors');
    const err = await snapshotModel('tessera/bert-tiny', { endpoint: hub.endpoint, cacheDir: cache }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DownloadError);
    expect((err as Error).message).toMatch(/hash to [0-9a-f]{64} but the hub announced/);
    const blobs = readdirSync(join(cache, 'models--tessera--bert-tiny', 'blobs'));
    expect(blobs.some((b) => b.startsWith(sha256(bertFiles.get('model.safetensors')!)))).toBe(false);
    // and a retry succeeds
    const dir = await snapshotModel('tessera/bert-tiny', { endpoint: hub.endpoint, cacheDir: cache });
    expect(existsSync(join(dir, 'model.safetensors'))).toBe(true);
  });
});

describe('snapshotModel: errors and credentials', () => {
  it('reports a missing model with the endpoint', async () => {
    const err = await snapshotModel('tessera/nope', { endpoint: hub.endpoint, cacheDir: freshCache() }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelNotFoundError);
    expect((err as Error).message).toContain(`model 'tessera/nope' not found on ${hub.endpoint}`);
  });

  it('reports a missing revision', async () => {
    const err = await snapshotModel('tessera/bert-tiny', { endpoint: hub.endpoint, cacheDir: freshCache(), revision: 'no-such-branch' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelNotFoundError);
    expect((err as Error).message).toMatch(/revision 'no-such-branch'/);
  });

  it('explains gated and private models, and uses HF_TOKEN or $HF_HOME/token', async () => {
    const cache = freshCache();
    for (const name of ['tessera/gated-bert', 'tessera/private-bert']) {
      const err = await snapshotModel(name, { endpoint: hub.endpoint, cacheDir: cache }).catch((e: unknown) => e);
      expect(err, name).toBeInstanceOf(HubAuthError);
      expect((err as Error).message).toMatch(/HTTP 401.*gated or private.*Set HF_TOKEN/);
    }
    process.env.HF_TOKEN = hub.token;
    const dir = await snapshotModel('tessera/gated-bert', { endpoint: hub.endpoint, cacheDir: cache });
    expect(existsSync(join(dir, 'model.safetensors'))).toBe(true);
    // The token goes to the hub, never to the CDN origin that LFS files redirect to.
    expect(hub.log.some((r) => r.server === 'hub' && r.authorization === `Bearer ${hub.token}`)).toBe(true);
    expect(hub.log.some((r) => r.server === 'cdn' && r.url.startsWith('/cdn-lfs/'))).toBe(true);
    expect(hub.log.filter((r) => r.server === 'cdn' && r.authorization !== undefined)).toEqual([]);
    delete process.env.HF_TOKEN;

    writeFileSync(join(process.env.HF_HOME!, 'token'), `${hub.token}\n`);
    try {
      const priv = await snapshotModel('tessera/private-bert', { endpoint: hub.endpoint, cacheDir: cache });
      expect(existsSync(join(priv, 'config.json'))).toBe(true);
    } finally {
      writeFileSync(join(process.env.HF_HOME!, 'token'), '');
    }
  });

  it('reports an unreachable hub, and falls back to a complete cached snapshot on refresh', async () => {
    // Port 9 (discard) on loopback: nothing listens there, so the connection is refused.
    const dead = 'http://127.0.0.1:9';
    const cache = freshCache();
    const err = await snapshotModel('tessera/bert-tiny', { endpoint: dead, cacheDir: cache, retryDelayMs: 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HubConnectionError);
    expect((err as Error).message).toMatch(/could not reach http:\/\/127\.0\.0\.1:9 for model 'tessera\/bert-tiny'/);
    const dir = await snapshotModel('tessera/bert-tiny', { endpoint: hub.endpoint, cacheDir: cache });
    expect(await snapshotModel('tessera/bert-tiny', { endpoint: dead, cacheDir: cache, refresh: true, retryDelayMs: 1 })).toBe(dir);
  });

  it('refuses names that could escape the cache', async () => {
    await expect(snapshotModel('../etc/passwd', { endpoint: hub.endpoint, cacheDir: freshCache() })).rejects.toThrow(/not a Hugging Face model name/);
  });
});

describe('snapshotModel: weight formats', () => {
  it('falls back to pytorch_model.bin for a repo without safetensors', async () => {
    const cache = freshCache();
    const before = hub.log.length;
    const dir = await snapshotModel('tessera/mamba-ssm-tiny', { endpoint: hub.endpoint, cacheDir: cache });
    expect(readdirSync(dir).sort()).toEqual(['config.json', 'pytorch_model.bin']);
    expect(readFileSync(join(dir, 'pytorch_model.bin')).equals(readFileSync(join(FIX, 'mamba-ssm-tiny/pytorch_model.bin')))).toBe(true);
    expect(requestsSince(before).some((r) => r.url.includes('model.safetensors'))).toBe(false);
    // The repo has no tokenizer files; the snapshot is still complete: no request next time, and offline works.
    const again = hub.log.length;
    expect(await snapshotModel('tessera/mamba-ssm-tiny', { endpoint: hub.endpoint, cacheDir: cache })).toBe(dir);
    expect(await snapshotModel('tessera/mamba-ssm-tiny', { cacheDir: cache, offline: true })).toBe(dir);
    expect(hub.log.length).toBe(again);
  });

  it('downloads a safetensors index and all of its shards', async () => {
    const cache = freshCache();
    const dir = await snapshotModel('tessera/llama-sharded', { endpoint: hub.endpoint, cacheDir: cache, tokenizer: false });
    expect(readdirSync(dir).sort()).toEqual(['config.json', 'model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors', 'model.safetensors.index.json']);
    // a missing shard makes the snapshot incomplete: offline now fails and names it
    const shard = join(cache, 'models--tessera--llama-sharded', 'blobs');
    const victim = readdirSync(shard).find((b) => b === sha256(readFileSync(join(dir, 'model-00002-of-00002.safetensors'))))!;
    writeFileSync(join(shard, `${victim}.moved`), readFileSync(join(shard, victim)));
    await import('node:fs/promises').then((fs) => fs.rm(join(shard, victim)));
    await expect(snapshotModel('tessera/llama-sharded', { cacheDir: cache, offline: true, tokenizer: false })).rejects.toThrow(
      /missing shards of model\.safetensors\.index\.json: model-00002-of-00002\.safetensors/,
    );
    // online, the missing shard is fetched again
    const again = await snapshotModel('tessera/llama-sharded', { endpoint: hub.endpoint, cacheDir: cache, tokenizer: false });
    expect(existsSync(join(again, 'model-00002-of-00002.safetensors'))).toBe(true);
  });

  it('fetches only tokenizer files and config when weights are not wanted', async () => {
    const cache = freshCache();
    const dir = await snapshotModel('tessera/bert-tiny', { endpoint: hub.endpoint, cacheDir: cache, weights: false });
    expect(readdirSync(dir).sort()).toEqual(['config.json', 'special_tokens_map.json', 'tokenizer.json', 'tokenizer_config.json', 'vocab.txt']);
  });
});
