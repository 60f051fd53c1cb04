/**
 * Per-blob locks shared with Python's huggingface_hub, which takes `flock(2)` on
 * `<cache>/.locks/models--org--name/<etag>.lock` (through the filelock package) around a download.
 *
 * Node has no flock. No well-kept registry package offers it either: fs-native-extensions takes
 * OFD locks, which on Linux do not exclude flock holders, so Python would not see them. We hold
 * the lock through util-linux's `flock` command: it locks the file, then runs a shell that waits
 * on its stdin. Closing that stdin releases the lock, and so does this process dying (the pipe
 * closes), so a crash never leaves a stale lock. Where `flock` is absent (macOS, Windows), an
 * exclusively created `<etag>.lock.owner` file, with the owner's pid to detect stale ones, keeps
 * Tessera processes apart (not Python ones).
 */
import { spawn } from 'node:child_process';
import { hostname } from 'node:os';
import { mkdir, open, readFile, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { HubError } from './errors.js';
import { sleep } from './http.js';

/** Another process held a download lock for longer than allowed. */
export class LockTimeoutError extends HubError {
  override name = 'LockTimeoutError';
}

/** How long to wait for a lock, and where to say that we are waiting. */
export interface LockOptions {
  timeoutMs: number;
  /** Called once when the lock is busy, with a sentence saying who we wait for. */
  onWait?: (message: string) => void;
  /** Force one mechanism (tests); default: `flock` where the command exists. */
  method?: 'flock' | 'owner-file';
}

type Release = () => Promise<void>;

/** Locks this process holds or waits for, so that concurrent loads in one process queue here. */
const held = new Map<string, Promise<void>>();
let flockMissing = false;

/** Run `fn` while holding the exclusive lock on `lockPath` (created when missing). */
export async function withFileLock<T>(lockPath: string, fn: () => Promise<T>, opts: LockOptions): Promise<T> {
  const before = held.get(lockPath) ?? Promise.resolve();
  let done!: () => void;
  const mine = new Promise<void>((r) => (done = r));
  const queued = before.then(() => mine);
  held.set(lockPath, queued);
  try {
    await before;
    await mkdir(dirname(lockPath), { recursive: true });
    const release = await acquire(lockPath, opts);
    try {
      return await fn();
    } finally {
      await release();
    }
  } finally {
    done();
    if (held.get(lockPath) === queued) held.delete(lockPath);
  }
}

async function acquire(lockPath: string, opts: LockOptions): Promise<Release> {
  if (opts.method !== 'owner-file' && !flockMissing) {
    const release = await flockCommand(lockPath, opts);
    if (release !== undefined) return release;
    if (opts.method === 'flock') throw new HubError(`could not lock ${lockPath}: the flock command is not installed`);
    flockMissing = true;
  }
  return ownerFile(lockPath, opts);
}

/** The lock held by a `flock` child process; undefined when the command does not exist. */
function flockCommand(lockPath: string, opts: LockOptions): Promise<Release | undefined> {
  return new Promise((resolve, reject) => {
    const child = spawn('flock', ['--exclusive', lockPath, '--command', 'echo locked; exec cat >/dev/null'], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stderr = '';
    let locked = false;
    const waiting = setTimeout(() => opts.onWait?.(`waiting for another process that is downloading into the cache (lock ${lockPath})`), 200);
    const timeout = setTimeout(() => {
      child.kill();
      reject(new LockTimeoutError(`another process held the download lock ${lockPath} for more than ${opts.timeoutMs} ms; retry later or raise lockTimeoutMs`));
    }, opts.timeoutMs);
    const exited = new Promise<void>((r) => child.once('close', () => r()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.on('data', (d: Buffer) => {
      if (locked || !d.toString().includes('locked')) return;
      locked = true;
      clearTimeout(waiting);
      clearTimeout(timeout);
      resolve(async () => {
        child.stdin.end();
        await exited;
      });
    });
    child.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(waiting);
      clearTimeout(timeout);
      if (err.code === 'ENOENT') resolve(undefined);
      else reject(new HubError(`could not lock ${lockPath}: ${err.message}`));
    });
    child.once('close', (code) => {
      if (locked) return;
      clearTimeout(waiting);
      clearTimeout(timeout);
      reject(new HubError(`could not lock ${lockPath}: flock exited with ${code}${stderr === '' ? '' : ` (${stderr.trim()})`}`));
    });
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The portable fallback: exclusive creation of `<lock>.owner`, polled, stale owners removed. */
async function ownerFile(lockPath: string, opts: LockOptions): Promise<Release> {
  const owner = `${lockPath}.owner`;
  const me = `${hostname()} ${process.pid}`;
  const deadline = Date.now() + opts.timeoutMs;
  let told = false;
  for (;;) {
    try {
      const fh = await open(owner, 'wx');
      await fh.writeFile(me);
      await fh.close();
      return () => rm(owner, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new HubError(`could not lock ${owner}: ${(err as Error).message}`);
    }
    const [host, pid] = (await readFile(owner, 'utf8').catch(() => '')).split(' ');
    if (host === hostname() && pid !== undefined && !alive(Number(pid))) {
      await rm(owner, { force: true });
      continue;
    }
    if (Date.now() > deadline) {
      throw new LockTimeoutError(`another process held the download lock ${owner} for more than ${opts.timeoutMs} ms; retry later or raise lockTimeoutMs`);
    }
    if (!told) opts.onWait?.(`waiting for another process that is downloading into the cache (lock ${owner})`);
    told = true;
    await sleep(100);
  }
}
