/**
 * One file from the hub into the cache, atomically and once. Under the blob's lock (shared with
 * Python's huggingface_hub, see file-lock.ts), bytes go to `blobs/<etag>.incomplete`, are checked
 * against the announced size and the ETag (a sha256 for LFS files, a git blob sha1 otherwise),
 * and only then renamed to `blobs/<etag>` and linked from the snapshot. An interrupted transfer
 * leaves only the `.incomplete` file, which the next attempt resumes with an HTTP Range request
 * (or restarts when the server ignores Range).
 *
 * Why not @huggingface/hub's downloadFileToCacheDir: it renames without checking size or hash,
 * always restarts from zero, takes no lock, needs the paths-info API, names snapshots after each
 * file's last commit rather than the revision's commit, and has no progress reporting.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { RepoCache } from './cache-layout.js';
import { DownloadError, httpError } from './errors.js';
import { withFileLock } from './file-lock.js';
import { isRetryableStatus, requestWithRetries, retryDelay, sleep, timedFetch, type RequestPolicy } from './http.js';
import { contentHashEtag, validateRepoPath } from './names.js';
import { ProgressBar } from './progress.js';
import type { ProgressSink } from './settings.js';

/** What a HEAD on `resolve/<revision>/<path>` tells us, as huggingface_hub reads it. */
export interface FileMetadata {
  /** The content hash the blob is named after: sha256 (LFS) or git blob sha1, validated. */
  etag: string;
  size: number;
  /** Where the bytes are (the LFS redirect target, or the resolve URL itself). */
  url: string;
}

export interface TransferContext {
  name: string;
  endpoint: string;
  /** Time limits and retries of the HEAD requests that read a file's metadata. */
  metadata: RequestPolicy;
  /** Time limits and retries of file transfers. */
  transfer: RequestPolicy;
  progress: ProgressSink | undefined;
  /** Longest wait for another process's download of the same blob. */
  lockTimeoutMs: number;
}

/** The hub URL of a file at a revision (names with '/' stay readable, other parts are encoded). */
export function resolveUrl(endpoint: string, name: string, revision: string, path: string): string {
  validateRepoPath(path);
  return `${endpoint}/${name}/resolve/${encodeURIComponent(revision)}/${path.split('/').map(encodeURIComponent).join('/')}`;
}

function announcedSize(raw: string | null, url: string): number {
  const size = raw === null || !/^\d{1,16}$/.test(raw.trim()) ? NaN : Number(raw);
  if (!Number.isSafeInteger(size)) throw new DownloadError(`${url}: the server announced no usable size (${JSON.stringify(raw)})`);
  return size;
}

/**
 * HEAD the file without following cross-host redirects: the hub answers LFS files with a 302
 * whose own headers carry X-Linked-Etag/X-Linked-Size (the CDN's would not).
 */
export async function fetchFileMetadata(ctx: TransferContext, revision: string, path: string): Promise<FileMetadata> {
  let url = resolveUrl(ctx.endpoint, ctx.name, revision, path);
  const what = `file '${path}' of model '${ctx.name}'`;
  // Relative redirects (a renamed repo) are followed, a bounded number of times.
  for (let hop = 0; hop < 5; hop++) {
    const res = await requestWithRetries(ctx.metadata, url, { method: 'HEAD', redirect: 'manual', headers: { 'Accept-Encoding': 'identity' } }, what);
    await res.body?.cancel();
    const location = res.headers.get('location');
    if (res.status >= 300 && res.status < 400 && location !== null) {
      const target = new URL(location, url);
      const linkedEtag = res.headers.get('x-linked-etag');
      const linkedSize = res.headers.get('x-linked-size');
      if (linkedEtag !== null && linkedSize !== null) {
        return { etag: contentHashEtag(linkedEtag, url), size: announcedSize(linkedSize, url), url: target.href };
      }
      if (target.origin === new URL(url).origin) {
        url = target.href;
        continue;
      }
      throw new DownloadError(`${url}: redirect to ${target.href} without X-Linked-Etag/X-Linked-Size; cannot name the blob`);
    }
    if (!res.ok) {
      throw httpError(res.status, ctx.name, ctx.endpoint, `file '${path}' at revision '${revision}'`, res.headers.get('x-error-code') ?? '');
    }
    const etag = res.headers.get('x-linked-etag') ?? res.headers.get('etag');
    if (etag === null) throw new DownloadError(`${url}: the server sent no ETag; is ${ctx.endpoint} a Hugging Face hub endpoint?`);
    return { etag: contentHashEtag(etag, url), size: announcedSize(res.headers.get('x-linked-size') ?? res.headers.get('content-length'), url), url };
  }
  throw new DownloadError(`${resolveUrl(ctx.endpoint, ctx.name, revision, path)}: too many redirects`);
}

/** A hash whose hex digest must equal the ETag (sha256 for LFS, git blob sha1 otherwise). */
function etagHasher(etag: string, size: number): Hash {
  if (etag.length === 64) return createHash('sha256');
  // git blob id: sha1("blob <size>\0" + content)
  return createHash('sha1').update(`blob ${size}\0`);
}

async function hashPrefix(hash: Hash, file: string, bytes: number): Promise<void> {
  if (bytes === 0) return;
  for await (const chunk of createReadStream(file, { start: 0, end: bytes - 1 })) hash.update(chunk as Buffer);
}

async function sizeOf(p: string): Promise<number | undefined> {
  try {
    return (await stat(p)).size;
  } catch {
    return undefined;
  }
}

/**
 * Make `blobs/<etag>` exist with verified contents and link `snapshots/<commit>/<path>` to it.
 * Concurrent calls for one blob, in this process or others, download it once.
 * @returns the snapshot path of the file.
 */
export async function downloadToCache(ctx: TransferContext, cache: RepoCache, commit: string, path: string, meta: FileMetadata): Promise<string> {
  const blob = cache.blobPath(meta.etag);
  if ((await sizeOf(blob)) !== meta.size) {
    await withFileLock(cache.lockPath(meta.etag), () => fetchBlob(ctx, path, meta, blob), {
      timeoutMs: ctx.lockTimeoutMs,
      onWait: (message) => ctx.progress?.write(`${path}: ${message}\n`),
    });
  }
  return cache.link(commit, path, meta.etag);
}

async function fetchBlob(ctx: TransferContext, path: string, meta: FileMetadata, blob: string): Promise<void> {
  // Another holder of the lock may have finished it while we waited.
  if ((await sizeOf(blob)) === meta.size) return;
  await mkdir(dirname(blob), { recursive: true });
  const incomplete = `${blob}.incomplete`;
  for (let attempt = 0; ; attempt++) {
    try {
      await transfer(ctx, path, meta, incomplete);
      break;
    } catch (err) {
      if (!(err instanceof InterruptedTransfer) || attempt >= ctx.transfer.retries) {
        throw err instanceof InterruptedTransfer ? new DownloadError(`${err.message}; gave up after ${attempt + 1} attempts, run again to resume`) : err;
      }
      await sleep(retryDelay(ctx.transfer, attempt));
    }
  }
  await rename(incomplete, blob);
}

/** A transfer that stopped early but whose bytes so far are good: worth resuming. */
class InterruptedTransfer extends Error {}

async function transfer(ctx: TransferContext, path: string, meta: FileMetadata, incomplete: string): Promise<void> {
  let have = (await sizeOf(incomplete)) ?? 0;
  if (have > meta.size) {
    await rm(incomplete, { force: true });
    have = 0;
  }
  const headers: Record<string, string> = { 'Accept-Encoding': 'identity' };
  if (have > 0 && have < meta.size) headers.Range = `bytes=${have}-`;
  const what = `downloading '${path}' of model '${ctx.name}'`;
  let res: Response;
  if (have === meta.size) {
    res = new Response(new Uint8Array(0), { status: 206 });
  } else {
    // One try here: the caller's loop retries, resuming from what this try kept.
    try {
      res = await timedFetch(ctx.transfer, meta.url, { headers, redirect: 'follow' });
    } catch (err) {
      throw new InterruptedTransfer(`${what} failed: ${(err as Error).message}`);
    }
    if (isRetryableStatus(res.status)) {
      await res.body?.cancel();
      throw new InterruptedTransfer(`${what} failed with HTTP ${res.status}`);
    } else if (res.status === 200) {
      have = 0; // the server ignored Range: start over
    } else if (res.status === 206) {
      const range = res.headers.get('content-range');
      if (range === null || !range.startsWith(`bytes ${have}-`)) {
        await res.body?.cancel();
        await rm(incomplete, { force: true });
        throw new InterruptedTransfer(`'${path}': the server answered a resume request with range '${range}'; restarting`);
      }
    } else if (res.status === 416) {
      await res.body?.cancel();
      await rm(incomplete, { force: true });
      throw new InterruptedTransfer(`'${path}': the server refused to resume; restarting`);
    } else {
      await res.body?.cancel();
      throw httpError(res.status, ctx.name, ctx.endpoint, `file '${path}'`);
    }
  }

  const hash = etagHasher(meta.etag, meta.size);
  await hashPrefix(hash, incomplete, have);
  const fh = await open(incomplete, have === 0 ? 'w' : 'a');
  const bar = new ProgressBar(ctx.progress, path, meta.size, have);
  let written = have;
  try {
    if (res.body !== null) {
      const reader = res.body.getReader();
      try {
        for (;;) {
          const { done, value: buf } = await reader.read();
          if (done) break;
          if (written + buf.length > meta.size) {
            throw new DownloadError(`'${path}' of model '${ctx.name}': the server sent more than the announced ${meta.size} bytes`);
          }
          await fh.write(buf);
          hash.update(buf);
          written += buf.length;
          bar.add(buf.length);
        }
      } catch (err) {
        await reader.cancel().catch(() => undefined);
        if (err instanceof DownloadError) {
          await rm(incomplete, { force: true });
          throw err;
        }
        throw new InterruptedTransfer(
          `download of '${path}' of model '${ctx.name}' interrupted after ${written} of ${meta.size} bytes (${(err as Error).message})`,
        );
      }
    }
    if (written === meta.size) bar.finish();
  } finally {
    // A failed transfer stops the bar too: a terminal bar redraws on a timer until stopped.
    bar.close();
    await fh.close();
  }
  if (written !== meta.size) {
    throw new InterruptedTransfer(`download of '${path}' of model '${ctx.name}' ended after ${written} of ${meta.size} bytes`);
  }
  const digest = hash.digest('hex');
  if (digest !== meta.etag) {
    await rm(incomplete, { force: true });
    throw new DownloadError(
      `'${path}' of model '${ctx.name}': downloaded bytes hash to ${digest} but the hub announced ${meta.etag}; the partial file was deleted, run again`,
    );
  }
}
