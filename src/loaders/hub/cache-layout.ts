/**
 * The on-disk layout Python's huggingface_hub uses, so that both read and write the same cache:
 *
 *     <cache>/models--<org>--<name>/
 *       blobs/<etag>                      file contents, named by the hub's ETag
 *       refs/<branch or tag>              the commit hash the name pointed to (no newline)
 *       snapshots/<commit>/<path>         relative symlink -> ../../blobs/<etag>
 */
import { copyFile, lstat, mkdir, readFile, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { getRepoFolderName } from '@huggingface/hub';

const COMMIT_HASH = /^[0-9a-f]{40}$/;

/** True for a full 40-hex commit id (which needs no refs/ lookup). */
export function isCommitHash(revision: string): boolean {
  return COMMIT_HASH.test(revision);
}

/**
 * Reject names that could escape the cache or are not hub ids (`org/name` or a legacy
 * un-namespaced `name`).
 */
export function validateModelName(name: string): void {
  if (!/^[A-Za-z0-9][\w.-]*(\/[\w.-]+)?$/.test(name) || name.includes('..') || name.endsWith('.')) {
    throw new Error(`'${name}' is not a Hugging Face model name (expected 'org/name' or 'name', letters, digits, '-', '_', '.')`);
  }
}

/** Reject repo-relative file paths that would leave the snapshot folder. */
export function validateRepoPath(path: string): void {
  if (path === '' || path.startsWith('/') || path.split('/').some((p) => p === '..' || p === '.' || p === '') || path.includes('\\')) {
    throw new Error(`refusing unsafe file path '${path}' from the hub`);
  }
}

export class RepoCache {
  readonly root: string;

  constructor(
    readonly cacheDir: string,
    readonly name: string,
  ) {
    validateModelName(name);
    this.root = join(cacheDir, getRepoFolderName({ type: 'model', name }));
  }

  refPath(revision: string): string {
    return join(this.root, 'refs', revision);
  }

  snapshotDir(commit: string): string {
    return join(this.root, 'snapshots', commit);
  }

  blobPath(etag: string): string {
    return join(this.root, 'blobs', etag);
  }

  pointerPath(commit: string, path: string): string {
    validateRepoPath(path);
    return join(this.snapshotDir(commit), path);
  }

  /** The commit a revision names locally: itself if it is a hash, else what refs/<revision> says. */
  async resolveLocal(revision: string): Promise<string | undefined> {
    if (isCommitHash(revision)) return revision;
    try {
      const commit = (await readFile(this.refPath(revision), 'utf8')).trim();
      return isCommitHash(commit) ? commit : undefined;
    } catch {
      return undefined;
    }
  }

  /** Record what a branch/tag resolved to; written via a temp file so readers never see half of it. */
  async writeRef(revision: string, commit: string): Promise<void> {
    if (revision === commit) return;
    const p = this.refPath(revision);
    await mkdir(dirname(p), { recursive: true });
    const tmp = `${p}.${process.pid}.tmp`;
    await writeFile(tmp, commit);
    await rename(tmp, p);
  }

  /** True when the snapshot has this file and its blob exists (a dangling link counts as missing). */
  async hasFile(commit: string, path: string): Promise<boolean> {
    try {
      return (await stat(this.pointerPath(commit, path))).isFile();
    } catch {
      return false;
    }
  }

  /** Point snapshots/<commit>/<path> at blobs/<etag> with a relative link, as huggingface_hub does. */
  async link(commit: string, path: string, etag: string): Promise<string> {
    const pointer = this.pointerPath(commit, path);
    await mkdir(dirname(pointer), { recursive: true });
    try {
      await lstat(pointer);
      await rm(pointer);
    } catch {
      // no previous (dangling) link
    }
    try {
      await symlink(relative(dirname(pointer), this.blobPath(etag)), pointer);
    } catch {
      // Filesystems without symlinks (some Windows setups): huggingface_hub copies the blob then.
      await copyFile(this.blobPath(etag), pointer);
    }
    return pointer;
  }
}
