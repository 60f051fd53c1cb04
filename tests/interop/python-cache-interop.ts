/**
 * Manual interoperability check with Python's huggingface_hub (not part of `npm test`: it needs a
 * Python with huggingface_hub installed). Run:
 *
 *     HF_PYTHON=/path/to/python npx tsx tests/interop/python-cache-interop.ts
 *
 * 1. Tessera downloads a model from a local fake hub; Python then finds every file offline
 *    (snapshot_download / hf_hub_download with local_files_only) and scan_cache_dir reports no
 *    warnings.
 * 2. Python downloads a model from the fake hub; Tessera then loads it offline with no request.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { FakeHub, commitHash, folderFiles } from '../helpers/fake-hub.js';
import { snapshotModel } from '../../src/loaders/hub/index.js';

const python = process.env.HF_PYTHON ?? 'python3';
const run = promisify(execFile);
const py = async (code: string, env: Record<string, string> = {}): Promise<string> =>
  (await run(python, ['-c', code], { env: { ...process.env, ...env }, encoding: 'utf8' })).stdout.trim();
const check = (ok: boolean, what: string): void => {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
  if (!ok) process.exitCode = 1;
};

const fixtures = join(import.meta.dirname, '..', 'fixtures');
const hub = new FakeHub();
await hub.start();
try {
  hub.addRepo('tessera/bert-tiny', commitHash('bert'), folderFiles(join(fixtures, 'bert-tiny')));
  hub.addRepo('tessera/mamba-ssm-tiny', commitHash('ssm'), folderFiles(join(fixtures, 'mamba-ssm-tiny')));

  const c1 = mkdtempSync(join(tmpdir(), 'interop-tessera-'));
  const dir = await snapshotModel('tessera/bert-tiny', { endpoint: hub.endpoint, cacheDir: c1, progress: false });
  const out = await py(
    `import huggingface_hub as h
print(h.snapshot_download('tessera/bert-tiny', cache_dir='${c1}', local_files_only=True))
print(h.hf_hub_download('tessera/bert-tiny', 'model.safetensors', cache_dir='${c1}', local_files_only=True))
print(len(h.scan_cache_dir('${c1}').warnings))`,
    { HF_HUB_OFFLINE: '1' },
  );
  const [snap, file, warnings] = out.split('\n');
  check(snap === dir, `Python finds Tessera's snapshot offline (${snap})`);
  check(file === join(dir, 'model.safetensors'), "Python's hf_hub_download resolves a Tessera-downloaded file offline");
  check(warnings === '0', 'scan_cache_dir reports no warnings on a Tessera-written cache');

  const c2 = mkdtempSync(join(tmpdir(), 'interop-python-'));
  await py(
    `import huggingface_hub as h
for f in ['config.json', 'pytorch_model.bin']: h.hf_hub_download('tessera/mamba-ssm-tiny', f, cache_dir='${c2}')`,
    { HF_ENDPOINT: hub.endpoint, HF_HUB_DISABLE_TELEMETRY: '1', HF_HUB_DISABLE_PROGRESS_BARS: '1' },
  );
  const before = hub.log.length;
  const d2 = await snapshotModel('tessera/mamba-ssm-tiny', { cacheDir: c2, offline: true });
  check(d2.endsWith(join('snapshots', commitHash('ssm'))) && hub.log.length === before, 'Tessera loads a Python-downloaded model offline with no request');
} finally {
  await hub.stop();
}
