/**
 * The on-disk layout Python's huggingface_hub uses, so that both read and write the same cache:
 *
 *     <cache>/models--<org>--<name>/
 *       blobs/<etag>                      file contents, named by the hub's ETag
 *       refs/<branch or tag>              the commit hash the name pointed to (no newline)
 *       snapshots/<commit>/<path>         relative symlink -> ../../blobs/<etag>
 *     <cache>/.locks/models--<org>--<name>/<etag>.lock   held while a blob is downloaded
 *
 * Every path is built from validated parts and checked to stay inside the cache before use.
 */
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, readFile, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { getRepoFolderName } from '@huggingface/hub';
import { assertInside, contentHashEtag, isCommitHash, validateModelName, validateRepoPath, validateRevision } from './names.js';

/** A name beside `path` that no other writer (process or concurrent call) will pick. */
function tempName(path: string): string {
  return `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
}

export class RepoCache {
  readonly root: string;
  private readonly locksRoot: string;

  constructor(
    readonly cacheDir: string,
    readonly name: string,
  ) {
    validateModelName(name);
    const folder = getRepoFolderName({ type: 'model', name });
    this.root = assertInside(cacheDir, join(cacheDir, folder));
    this.locksRoot = assertInside(cacheDir, join(cacheDir, '.locks', folder));
  }

  refPath(revision: string): string {
    validateRevision(revision);
    return assertInside(this.root, join(this.root, 'refs', revision));
  }

  snapshotDir(commit: string): string {
    if (!isCommitHash(commit)) throw new Error(`'${commit}' is not a commit hash`);
    return join(this.root, 'snapshots', commit);
  }

  blobPath(etag: string): string {
    return assertInside(this.root, join(this.root, 'blobs', contentHashEtag(etag, this.name)));
  }

  /** huggingface_hub's lock file for one blob. */
  lockPath(etag: string): string {
    return assertInside(this.locksRoot, join(this.locksRoot, `${contentHashEtag(etag, this.name)}.lock`));
  }

  pointerPath(commit: string, path: string): string {
    validateRepoPath(path);
    const dir = this.snapshotDir(commit);
    return assertInside(dir, join(dir, path));
  }

  /** The commit a revision names locally: itself if it is a hash, else what refs/<revision> says. */
  async resolveLocal(revision: string): Promise<string | undefined> {
    if (isCommitHash(revision)) return revision;
    try {
      const commit = (await readFile(this.refPath(revision), 'utf8')).trim();
      return isCommitHash(commit) ? commit : undefined;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === undefined) throw err; // a refused revision
      return undefined;
    }
  }

  /** Record what a branch/tag resolved to; written via a temp file so readers never see half of it. */
  async writeRef(revision: string, commit: string): Promise<void> {
    if (revision === commit) return;
    if (!isCommitHash(commit)) throw new Error(`refusing to record '${commit}' as the commit of '${revision}': not a commit hash`);
    const p = this.refPath(revision);
    await mkdir(dirname(p), { recursive: true });
    const tmp = tempName(p);
    await writeFile(tmp, commit);
    await rename(tmp, p);
  }

  /** True when the snapshot has this file and its blob exists (a dangling link counts as missing). */
  async hasFile(commit: string, path: string): Promise<boolean> {
    try {
      return (await stat(this.pointerPath(commit, path))).isFile();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === undefined) throw err; // a refused path
      return false;
    }
  }

  /**
   * Point snapshots/<commit>/<path> at blobs/<etag> with a relative link, as huggingface_hub
   * does. The link is made under a temporary name and renamed into place, so concurrent loads
   * never see a missing or half-made pointer.
   */
  async link(commit: string, path: string, etag: string): Promise<string> {
    const pointer = this.pointerPath(commit, path);
    const blob = this.blobPath(etag);
    await mkdir(dirname(pointer), { recursive: true });
    const tmp = tempName(pointer);
    try {
      await symlink(relative(dirname(pointer), blob), tmp);
    } catch {
      // Filesystems without symlinks (some Windows setups): huggingface_hub copies the blob then.
      await copyFile(blob, tmp);
    }
    try {
      await rename(tmp, pointer);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
    return pointer;
  }
}
