// A Hugging Face hub look-alike on 127.0.0.1 for tests: the model-info API that
// @huggingface/hub's modelInfo calls, and /{repo}/resolve/{revision}/{path} with the headers
// huggingface_hub relies on (X-Repo-Commit, ETag, X-Linked-Etag/Size, 302 to an LFS "CDN" path
// for large files, Range support). Fault injection, per `repo/path` key: cut or corrupt a file
// once, forge its ETag, answer error statuses first, stall before the headers or mid-body, or
// send the body slowly (to widen the window in which concurrent loads race).
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';

export interface FakeRepo {
  /** commit hash -> path -> bytes */
  commits: Map<string, Map<string, Buffer>>;
  /** branch/tag -> commit hash */
  refs: Map<string, string>;
  /** resolve needs a token (gated model); its model info stays public, as on the hub. */
  gated?: boolean;
  /** everything needs a token (private model). */
  private?: boolean;
}

export interface LoggedRequest {
  /** 'hub' or 'cdn' (the separate origin LFS files are redirected to, as on the real hub) */
  server: 'hub' | 'cdn';
  method: string;
  url: string;
  range?: string;
  authorization?: string;
}

const LFS_SUFFIXES = ['.safetensors', '.bin'];

export function commitHash(seed: string): string {
  return createHash('sha1').update(seed).digest('hex');
}

export function gitBlobSha(data: Buffer): string {
  return createHash('sha1').update(`blob ${data.length}\0`).update(data).digest('hex');
}

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * The files directly in a fixture folder, as one commit. Subfolders (the gradient references in
 * `grads/`) are not part of the model repo and are left out.
 */
export function folderFiles(dir: string): Map<string, Buffer> {
  return new Map(
    readdirSync(dir, { withFileTypes: true })
      .filter((entry) => entry.isFile())
      .map((entry) => [entry.name, readFileSync(join(dir, entry.name))]),
  );
}

export class FakeHub {
  readonly repos = new Map<string, FakeRepo>();
  readonly log: LoggedRequest[] = [];
  /** paths (as `repo/path`) whose next download is cut after half of its bytes */
  readonly cutOnce = new Set<string>();
  /** paths whose next download has one byte flipped (bytes that do not match the ETag) */
  readonly corruptOnce = new Set<string>();
  /** ETag (and X-Linked-Etag) the server announces for a key instead of the content hash. */
  readonly forgedEtag = new Map<string, string>();
  /** Statuses answered, one per request, before a key (or `api:<repo>`) is served normally. */
  readonly failFirst = new Map<string, number[]>();
  /** Keys (or `api:<repo>`) whose requests are never answered: no headers, connection held. */
  readonly stallHeaders = new Set<string>();
  /** Keys whose next download sends half of the bytes and then nothing, connection held open. */
  readonly stallBodyOnce = new Set<string>();
  /** Delay in ms between the body chunks of a key's downloads. */
  readonly slowBody = new Map<string, number>();
  token = 'hf_test_secret';
  private server: Server | undefined;
  private cdn: Server | undefined;
  endpoint = '';
  cdnEndpoint = '';

  addRepo(name: string, commit: string, files: Map<string, Buffer>, extra: Partial<FakeRepo> = {}): FakeRepo {
    const repo: FakeRepo = { commits: new Map([[commit, files]]), refs: new Map([['main', commit]]), ...extra };
    this.repos.set(name, repo);
    return repo;
  }

  async start(): Promise<string> {
    this.server = createServer((req, res) => this.handle(req, res, 'hub'));
    this.cdn = createServer((req, res) => this.handle(req, res, 'cdn'));
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    // Another loopback address, so that the CDN is another *host* (huggingface_hub compares
    // hostnames, not ports, when deciding whether a redirect leaves the hub).
    await new Promise<void>((resolve) => this.cdn!.listen(0, '127.0.0.2', resolve));
    this.endpoint = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    this.cdnEndpoint = `http://127.0.0.2:${(this.cdn.address() as AddressInfo).port}`;
    return this.endpoint;
  }

  async stop(): Promise<void> {
    for (const s of [this.server, this.cdn]) {
      s?.closeAllConnections();
      await new Promise<void>((resolve) => s?.close(() => resolve()) ?? resolve());
    }
  }

  private authorized(req: IncomingMessage): boolean {
    return req.headers.authorization === `Bearer ${this.token}`;
  }

  private json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    const data = Buffer.from(JSON.stringify(body));
    res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': data.length, ...headers });
    res.end(data);
  }

  private handle(req: IncomingMessage, res: ServerResponse, server: 'hub' | 'cdn'): void {
    const url = new URL(req.url!, 'http://127.0.0.1');
    this.log.push({ server, method: req.method!, url: url.pathname, range: req.headers.range, authorization: req.headers.authorization });
    const path = decodeURIComponent(url.pathname);
    if (server === 'cdn') {
      const lfs = /^\/cdn-lfs\/([0-9a-f]{64})$/.exec(path);
      return lfs === null ? this.json(res, 404, { error: 'not found' }) : this.lfs(req, res, lfs[1]);
    }

    // Match the raw path: a revision such as refs/pr/1 arrives as one %2F-encoded segment.
    const raw = url.pathname;
    let m = /^\/api\/models\/(.+)\/revision\/([^/]+)$/.exec(raw)?.map(decodeURIComponent) ?? null;
    if (m !== null && req.method === 'GET') {
      if (this.fault(res, `api:${m[1]}`)) return;
      return this.modelInfo(req, res, m[1], m[2]);
    }
    m = /^\/(.+?)\/resolve\/([^/]+)\/(.+)$/.exec(raw)?.map(decodeURIComponent) ?? null;
    if (m !== null && (req.method === 'GET' || req.method === 'HEAD')) {
      if (this.fault(res, `${m[1]}/${m[3]}`)) return;
      return this.resolve(req, res, m[1], m[2], m[3]);
    }
    this.json(res, 404, { error: 'not found' });
  }

  /** Apply a stall or an error status to this request; true when the request is dealt with. */
  private fault(res: ServerResponse, key: string): boolean {
    if (this.stallHeaders.has(key)) return true;
    const statuses = this.failFirst.get(key);
    const status = statuses?.shift();
    if (status === undefined) return false;
    this.json(res, status, { error: `injected HTTP ${status}` }, status === 429 ? { 'Retry-After': '0' } : {});
    return true;
  }

  private lookup(name: string, revision: string): { repo: FakeRepo; commit: string; files: Map<string, Buffer> } | undefined {
    const repo = this.repos.get(name);
    if (repo === undefined) return undefined;
    const commit = repo.refs.get(revision) ?? (repo.commits.has(revision) ? revision : undefined);
    if (commit === undefined) return undefined;
    return { repo, commit, files: repo.commits.get(commit)! };
  }

  private modelInfo(req: IncomingMessage, res: ServerResponse, name: string, revision: string): void {
    const repo = this.repos.get(name);
    if (repo === undefined || (repo.private === true && !this.authorized(req))) {
      // The real hub answers 401 for both unknown and private repos when unauthenticated.
      return this.json(res, repo === undefined ? 404 : 401, { error: 'Repository not found' }, { 'X-Error-Code': 'RepoNotFound' });
    }
    const found = this.lookup(name, revision);
    if (found === undefined) return this.json(res, 404, { error: `Invalid rev id: ${revision}` }, { 'X-Error-Code': 'RevisionNotFound' });
    this.json(res, 200, {
      _id: commitHash(name).slice(0, 24),
      id: name,
      sha: found.commit,
      private: repo.private === true,
      gated: repo.gated === true ? 'manual' : false,
      downloads: 0,
      likes: 0,
      lastModified: '2024-01-01T00:00:00.000Z',
      siblings: [...found.files.keys()].map((rfilename) => ({ rfilename })),
    });
  }

  private resolve(req: IncomingMessage, res: ServerResponse, name: string, revision: string, file: string): void {
    const repo = this.repos.get(name);
    if (repo !== undefined && (repo.gated === true || repo.private === true) && !this.authorized(req)) {
      return this.json(res, 401, { error: `Access to model ${name} is restricted.` }, { 'X-Error-Code': 'GatedRepo' });
    }
    const found = this.lookup(name, revision);
    if (found === undefined) return this.json(res, 404, { error: 'Repository not found' }, { 'X-Error-Code': 'RepoNotFound' });
    const data = found.files.get(file);
    if (data === undefined) return this.json(res, 404, { error: 'Entry not found' }, { 'X-Error-Code': 'EntryNotFound', 'X-Repo-Commit': found.commit });
    const forged = this.forgedEtag.get(`${name}/${file}`);
    if (LFS_SUFFIXES.some((s) => file.endsWith(s))) {
      const oid = sha256(data);
      res.writeHead(302, {
        // Absolute and on another origin, like the hub's CDN: clients must not send the token there.
        Location: `${this.cdnEndpoint}/cdn-lfs/${oid}?repo=${encodeURIComponent(name)}&file=${encodeURIComponent(file)}`,
        'X-Repo-Commit': found.commit,
        'X-Linked-Etag': forged ?? `"${oid}"`,
        'X-Linked-Size': String(data.length),
        ETag: `"${gitBlobSha(Buffer.from(`version https://git-lfs.github.com/spec/v1\noid sha256:${oid}\nsize ${data.length}\n`))}"`,
        'Content-Length': 0,
      });
      return void res.end();
    }
    this.sendBytes(req, res, data, forged ?? `"${gitBlobSha(data)}"`, { 'X-Repo-Commit': found.commit }, `${name}/${file}`);
  }

  private lfs(req: IncomingMessage, res: ServerResponse, oid: string): void {
    const url = new URL(req.url!, 'http://127.0.0.1');
    for (const repo of this.repos.values()) {
      for (const files of repo.commits.values()) {
        for (const data of files.values()) {
          if (sha256(data) === oid) {
            const key = `${url.searchParams.get('repo')}/${url.searchParams.get('file')}`;
            if (this.fault(res, key)) return;
            return this.sendBytes(req, res, data, `"${oid}"`, {}, `${url.searchParams.get('repo')}/${url.searchParams.get('file')}`);
          }
        }
      }
    }
    this.json(res, 404, { error: 'no such object' });
  }

  private sendBytes(req: IncomingMessage, res: ServerResponse, data: Buffer, etag: string, headers: Record<string, string>, key: string): void {
    let start = 0;
    const range = req.headers.range;
    if (range !== undefined) {
      const m = /^bytes=(\d+)-$/.exec(range);
      if (m === null || Number(m[1]) >= data.length) {
        res.writeHead(416, { 'Content-Range': `bytes */${data.length}` });
        return void res.end();
      }
      start = Number(m[1]);
    }
    const body = data.subarray(start);
    res.writeHead(range !== undefined ? 206 : 200, {
      ...headers,
      ETag: etag,
      'Content-Length': body.length,
      'Content-Type': 'application/octet-stream',
      'Accept-Ranges': 'bytes',
      ...(range !== undefined ? { 'Content-Range': `bytes ${start}-${data.length - 1}/${data.length}` } : {}),
    });
    if (req.method === 'HEAD') return void res.end();
    if (this.cutOnce.delete(key)) {
      // Simulate a server dying mid-file: half of the bytes, then the connection drops.
      res.write(body.subarray(0, Math.floor(body.length / 2)), () => setTimeout(() => res.socket?.destroy(), 20));
      return;
    }
    if (this.stallBodyOnce.delete(key)) {
      res.write(body.subarray(0, Math.floor(body.length / 2)));
      return;
    }
    if (this.corruptOnce.delete(key)) {
      const bad = Buffer.from(body);
      bad[0] ^= 0xff;
      return void res.end(bad);
    }
    const delay = this.slowBody.get(key);
    if (delay === undefined) return void res.end(body);
    // Eight slices with a pause after each, so that downloads of one file overlap in time.
    const step = Math.ceil(body.length / 8);
    const send = (at: number): void => {
      if (at >= body.length || res.destroyed) return void res.end();
      res.write(body.subarray(at, at + step), () => setTimeout(() => send(at + step), delay));
    };
    send(0);
  }
}
