import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { snapshotModel } from '../../src/loaders/hub/index.js';
import { LINE_INTERVAL_MS, ProgressBar } from '../../src/loaders/hub/progress.js';
import { FakeHub, commitHash, folderFiles } from '../helpers/fake-hub.js';

const FIX = join(import.meta.dirname, '..', 'fixtures');
const hub = new FakeHub();
const bertFiles = folderFiles(join(FIX, 'bert-tiny'));
const WEIGHTS_SIZE = bertFiles.get('model.safetensors')!.length;
const savedHome = process.env.HF_HOME;

function freshCache(): string {
  return mkdtempSync(join(tmpdir(), 'tessera-progress-'));
}

/** A sink that records what is written to it. */
function recorder(isTTY: boolean) {
  const out: string[] = [];
  return { out, sink: { isTTY, columns: 200, write: (s: string) => out.push(s) } };
}

// eslint-disable-next-line no-control-regex
const stripAnsi = (s: string) => s.replace(/\x1b(\[[0-9;?]*[A-Za-z]|[78])/g, '');

beforeAll(async () => {
  process.env.HF_HOME = freshCache();
  await hub.start();
  hub.addRepo('tessera/bert-tiny', commitHash('bert-a'), bertFiles);
});

afterEach(() => {
  vi.useRealTimers();
});

afterAll(async () => {
  await hub.stop();
  if (savedHome === undefined) delete process.env.HF_HOME;
  else process.env.HF_HOME = savedHome;
});

describe('download progress', () => {
  it('draws a bar with bytes, rate and ETA on a terminal sink', async () => {
    const { out, sink } = recorder(true);
    await snapshotModel('tessera/bert-tiny', { endpoint: hub.endpoint, cacheDir: freshCache(), progress: sink });
    const raw = out.join('');
    expect(raw).toContain('\x1b['); // drawn in place, with cursor control
    const kb = (WEIGHTS_SIZE / 1000).toFixed(1);
    expect(stripAnsi(raw)).toMatch(new RegExp(`model\\.safetensors \\[#{20}\\] 100% ${kb} kB/${kb} kB .*/s ETA \\d\\d:\\d\\d`));
  });

  it('writes plain lines, a final one per file, to a sink that is not a terminal', async () => {
    const { out, sink } = recorder(false);
    await snapshotModel('tessera/bert-tiny', { endpoint: hub.endpoint, cacheDir: freshCache(), progress: sink });
    const text = out.join('');
    expect(text).not.toMatch(/[\r\x1b]/);
    const lines = text.split('\n').filter((l) => l !== '');
    for (const file of ['config.json', 'model.safetensors', 'tokenizer.json', 'vocab.txt']) {
      expect(lines.filter((l) => l.startsWith(`${file} [#`) && l.includes(' 100% '))).toHaveLength(1);
    }
  });

  it('prints a non-terminal line at most once per interval while a file is transferring', () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const { out, sink } = recorder(false);
    const bar = new ProgressBar(sink, 'weights.bin', 1000);
    bar.add(100);
    expect(out).toEqual([]); // the first interval has not passed
    vi.advanceTimersByTime(LINE_INTERVAL_MS);
    bar.add(100);
    bar.add(100); // same instant: no second line
    expect(out).toHaveLength(1);
    expect(out[0]).toMatch(/^weights\.bin \[#{4}\.{16}\]  20% 200 B\/1\.0 kB .*\n$/);
    vi.advanceTimersByTime(LINE_INTERVAL_MS);
    bar.add(700);
    expect(out).toHaveLength(2);
    expect(out[1]).toContain(' 100% 1.0 kB/1.0 kB');
    bar.finish();
    bar.close(); // after finish: nothing more
    expect(out).toHaveLength(3);
    expect(out[2]).toMatch(/^weights\.bin \[#{20}\] 100% /);
  });

  it('a transfer that fails closes the bar without a final line, and a terminal bar stops redrawing', async () => {
    const plain = recorder(false);
    const failed = new ProgressBar(plain.sink, 'a', 1000);
    failed.add(10);
    failed.close();
    expect(plain.out).toEqual([]);

    const tty = recorder(true);
    const bar = new ProgressBar(tty.sink, 'b', 1000);
    bar.add(10);
    bar.close();
    const written = tty.out.length;
    await new Promise((r) => setTimeout(r, 350)); // the bar redraws every 100 ms while running
    expect(tty.out.length).toBe(written);
  });

  it('chooses the sink from the progress option', () => {
    const plain = { isTTY: false, write: () => undefined };
    expect(ProgressBar.sinkFor(false)).toBeUndefined();
    expect(ProgressBar.sinkFor(plain)).toBe(plain); // a custom sink is used whether or not it is a terminal
    expect(ProgressBar.sinkFor(true)).toBe(process.stderr); // asked for: stderr even when it is a pipe
    expect(ProgressBar.sinkFor(undefined)).toBe(process.stderr.isTTY === true ? process.stderr : undefined);
  });
});
