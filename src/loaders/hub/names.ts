/**
 * What the hub and its cache accept as names, checked before any request is made or any path is
 * joined: a hostile server or a typo must not be able to steer a write outside the cache.
 */
import { isAbsolute, relative, resolve } from 'node:path';
import { HubError } from './errors.js';

/** A name, revision, file path or ETag that the hub would not produce, refused before use. */
export class UnsafeHubNameError extends HubError {
  override name = 'UnsafeHubNameError';
}

const COMMIT_HASH = /^[0-9a-f]{40}$/;

/** True for a full 40-hex commit id (which needs no refs/ lookup). */
export function isCommitHash(revision: string): boolean {
  return COMMIT_HASH.test(revision);
}

// huggingface_hub's validate_repo_id, in ASCII: each part starts and ends with a word character.
const REPO_PART = /^[A-Za-z0-9_](?:[\w.-]{0,94}[A-Za-z0-9_])?$/;

/**
 * Refuse repo ids the hub would refuse (`org/name` or a legacy un-namespaced `name`, letters,
 * digits, `-`, `_`, `.`, at most 96 characters a part, no `--`, `..` or trailing `.git`).
 */
export function validateModelName(name: string): void {
  const parts = name.split('/');
  if (parts.length > 2 || !parts.every((p) => REPO_PART.test(p)) || name.includes('--') || name.includes('..') || name.endsWith('.git')) {
    throw new UnsafeHubNameError(
      `'${name}' is not a Hugging Face model name (expected 'org/name' or 'name': letters, digits, '-', '_', '.', ` +
        "at most 96 characters a part, starting and ending with a letter or digit, no '--' or '..')",
    );
  }
}

/**
 * Refuse revisions that are not git ref names (git check-ref-format's rules) or commit hashes.
 * A revision becomes a path under `refs/`, so `..`, leading `/` and the like would leave it.
 */
export function validateRevision(revision: string): void {
  const bad =
    revision.length === 0 ||
    revision.length > 255 ||
    revision === '@' ||
    // eslint-disable-next-line no-control-regex
    /[\x00-\x20\x7f~^:?*[\\]/.test(revision) ||
    revision.includes('..') ||
    revision.includes('@{') ||
    revision.includes('//') ||
    revision.startsWith('/') ||
    revision.startsWith('-') ||
    revision.endsWith('/') ||
    revision.endsWith('.') ||
    revision.split('/').some((part) => part.startsWith('.') || part.endsWith('.lock'));
  if (bad) {
    throw new UnsafeHubNameError(
      `'${revision}' is not a revision (expected a branch or tag name such as 'main' or 'refs/pr/1', or a 40-character commit hash)`,
    );
  }
}

/**
 * Refuse repo-relative file paths that would leave the snapshot folder or that no repo can hold.
 * @param where names the source of the path in the error.
 */
export function validateRepoPath(path: string, where = 'the hub'): void {
  const bad =
    path === '' ||
    path.length > 1024 ||
    path.startsWith('/') ||
    path.includes('\\') ||
    // eslint-disable-next-line no-control-regex
    /[\x00-\x1f\x7f]/.test(path) ||
    /^[A-Za-z]:/.test(path) ||
    path.split('/').some((p) => p === '..' || p === '.' || p === '');
  if (bad) throw new UnsafeHubNameError(`refusing unsafe file path '${path}' from ${where}`);
}

/**
 * The hub names blobs by their content hash: sha256 (64 hex) for LFS files, the git blob sha1 (40
 * hex) otherwise. Anything else is refused, since the ETag becomes a file name and the checksum.
 * @returns the ETag without quotes or the weak-validator prefix.
 */
export function contentHashEtag(raw: string, url: string): string {
  const etag = raw.trim().replace(/^W\//, '').replace(/^"|"$/g, '');
  if (!/^(?:[0-9a-f]{40}|[0-9a-f]{64})$/.test(etag)) {
    throw new UnsafeHubNameError(
      `${url}: the server's ETag ${JSON.stringify(raw.slice(0, 200))} is not a git sha1 or sha256 content hash; ` +
        'refusing to name a cached file after it (is HF_ENDPOINT a Hugging Face hub?)',
    );
  }
  return etag;
}

/** Throw unless `path` lies strictly inside `root` (after resolving `.` and `..`). */
export function assertInside(root: string, path: string): string {
  const rel = relative(resolve(root), resolve(path));
  if (rel === '' || rel === '..' || rel.startsWith(`..${'/'}`) || rel.startsWith('..\\') || isAbsolute(rel)) {
    throw new UnsafeHubNameError(`refusing to use '${path}': it is outside the cache folder '${root}'`);
  }
  return path;
}
