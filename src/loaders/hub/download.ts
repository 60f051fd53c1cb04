/**
 * One file from the hub into the cache, atomically: bytes go to `blobs/<etag>.incomplete`, are
 * checked against the announced size and the ETag (a sha256 for LFS files, a git blob sha1
 * otherwise), and only then renamed to `blobs/<etag>` and linked from the snapshot. An
 * interrupted transfer leaves only the `.incomplete` file, which the next attempt resumes with
 * an HTTP Range request (or restarts when the server ignores Range).
 *
 * Why not @huggingface/hub's downloadFileToCacheDir: it renames without checking size or hash,
 * always restarts from zero, needs the paths-info API, names snapshots after each file's last
 * commit rather than the revision's commit, and has no progress reporting.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { RepoCache } from './cache-layout.js';
import { DownloadError, HubConnectionError, httpError } from './errors.js';
import { ProgressBar } from './progress.js';
import type { ProgressSink } from './settings.js';

/** What a HEAD on `resolve/<revision>/<path>` tells us, as huggingface_hub reads it. */
export interface FileMetadata {
  etag: string;
  size: number;
  commit: string | undefined;
  /** Where the bytes are (the LFS redirect target, or the resolve URL itself). */
  url: string;
}

export interface TransferContext {
  name: string;
  endpoint: string;
  fetch: typeof fetch;
  progress: ProgressSink | undefined;
  /** Extra attempts after an interrupted transfer, each resuming where the last stopped. */
  retries: number;
}

function normalizeEtag(raw: string | null): string | undefined {
  if (raw === null) return undefined;
  return raw.replace(/^W\//, '').replace(/^"|"$/g, '');
}

/** The hub URL of a file at a revision (names with '/' stay readable, other parts are encoded). */
export function resolveUrl(endpoint: string, name: string, revision: string, path: string): string {
  return `${endpoint}/${name}/resolve/${encodeURIComponent(revision)}/${path.split('/').map(encodeURIComponent).join('/')}`;
}

/**
 * HEAD the file without following cross-host redirects: the hub answers LFS files with a 302
 * whose own headers carry X-Linked-Etag/X-Linked-Size (the CDN's would not).
 */
export async function fetchFileMetadata(ctx: TransferContext, revision: string, path: string): Promise<FileMetadata> {
  let url = resolveUrl(ctx.endpoint, ctx.name, revision, path);
  // Relative redirects (a renamed repo) are followed, a bounded number of times.
  for (let hop = 0; hop < 5; hop++) {
    let res: Response;
    try {
      res = await ctx.fetch(url, { method: 'HEAD', redirect: 'manual', headers: { 'Accept-Encoding': 'identity' } });
    } catch (err) {
      throw new HubConnectionError(`could not reach ${ctx.endpoint} for '${path}' of model '${ctx.name}': ${(err as Error).message}`);
    }
    const location = res.headers.get('location');
    if (res.status >= 300 && res.status < 400 && location !== null) {
      const target = new URL(location, url);
      const linkedEtag = normalizeEtag(res.headers.get('x-linked-etag'));
      const linkedSize = res.headers.get('x-linked-size');
      if (linkedEtag !== undefined && linkedSize !== null) {
        return { etag: linkedEtag, size: Number(linkedSize), commit: res.headers.get('x-repo-commit') ?? undefined, url: target.href };
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
    const etag = normalizeEtag(res.headers.get('x-linked-etag') ?? res.headers.get('etag'));
    const size = Number(res.headers.get('x-linked-size') ?? res.headers.get('content-length'));
    if (etag === undefined || !Number.isFinite(size)) {
      throw new DownloadError(`${url}: the server sent no ETag or Content-Length; is ${ctx.endpoint} a Hugging Face hub endpoint?`);
    }
    return { etag, size, commit: res.headers.get('x-repo-commit') ?? undefined, url };
  }
  throw new DownloadError(`${resolveUrl(ctx.endpoint, ctx.name, revision, path)}: too many redirects`);
}

/** Hash whose hex digest should equal the ETag, when the ETag is a content hash we know. */
function etagHasher(etag: string, size: number): Hash | undefined {
  if (/^[0-9a-f]{64}$/.test(etag)) return createHash('sha256');
  if (/^[0-9a-f]{40}$/.test(etag)) {
    // git blob id: sha1("blob <size>\0" + content)
    const h = createHash('sha1');
    h.update(`blob ${size}\0`);
    return h;
  }
  return undefined;
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
 * @returns the snapshot path of the file.
 */
export async function downloadToCache(ctx: TransferContext, cache: RepoCache, commit: string, path: string, meta: FileMetadata): Promise<string> {
  const blob = cache.blobPath(meta.etag);
  if ((await sizeOf(blob)) === meta.size) return cache.link(commit, path, meta.etag);
  await mkdir(dirname(blob), { recursive: true });
  const incomplete = `${blob}.incomplete`;
  for (let attempt = 0; ; attempt++) {
    try {
      await transfer(ctx, path, meta, incomplete);
      break;
    } catch (err) {
      if (!(err instanceof InterruptedTransfer) || attempt >= ctx.retries) {
        throw err instanceof InterruptedTransfer ? new DownloadError(err.message + '; run again to resume') : err;
      }
    }
  }
  await rename(incomplete, blob);
  return cache.link(commit, path, meta.etag);
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
  let res: Response;
  if (have === meta.size) {
    res = new Response(new Uint8Array(0), { status: 206 });
  } else {
    try {
      res = await ctx.fetch(meta.url, { headers, redirect: 'follow' });
    } catch (err) {
      throw new InterruptedTransfer(`downloading '${path}' of model '${ctx.name}' failed: ${(err as Error).message}`);
    }
    if (res.status === 200) {
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
  if (hash !== undefined) await hashPrefix(hash, incomplete, have);
  const bar = new ProgressBar(ctx.progress, path, meta.size, have);
  const fh = await open(incomplete, have === 0 ? 'w' : 'a');
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
          hash?.update(buf);
          written += buf.length;
          bar.add(buf.length);
        }
      } catch (err) {
        await reader.cancel().catch(() => undefined);
        if (err instanceof DownloadError) throw err;
        throw new InterruptedTransfer(
          `download of '${path}' of model '${ctx.name}' interrupted after ${written} of ${meta.size} bytes (${(err as Error).message})`,
        );
      }
    }
  } finally {
    await fh.close();
  }
  if (written !== meta.size) {
    throw new InterruptedTransfer(`download of '${path}' of model '${ctx.name}' ended after ${written} of ${meta.size} bytes`);
  }
  bar.finish();
  if (hash !== undefined) {
    const digest = hash.digest('hex');
    if (digest !== meta.etag) {
      await rm(incomplete, { force: true });
      throw new DownloadError(
        `'${path}' of model '${ctx.name}': downloaded bytes hash to ${digest} but the hub announced ${meta.etag}; the partial file was deleted, run again`,
      );
    }
  }
}
