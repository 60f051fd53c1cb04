/**
 * torch.save's default container since torch 1.6: a zip (entries stored, not deflated) with
 * `<archive>/data.pkl` (the pickled object), `<archive>/data/<key>` (one entry per storage),
 * `<archive>/version` and, since torch 2.1, `<archive>/byteorder`. yauzl reads entries by
 * random access, so multi-GB shards are never read whole into one buffer.
 */
import buffer from 'node:buffer';
import zlib from 'node:zlib';
import yauzl from 'yauzl';
import type { TensorMap } from '../raw-tensor.js';
import { unpickle } from './pickle.js';
import { parseStoragePid, registerStorage, resolveTorchGlobal, type StorageRef } from './torch-globals.js';

// Entries are read whole into one Buffer; Node's Buffer limit (buffer.constants.MAX_LENGTH) is
// at most 2^32 bytes, and a larger claim is refused before reading rather than failing inside.
const MAX_ENTRY_BYTES = Math.min(buffer.constants.MAX_LENGTH, 2 ** 32 - 1);
import { collectTensorRefs } from './state-dict.js';
import { materializeTensor } from './materialize.js';

function openZip(path: string): Promise<yauzl.ZipFile> {
  return new Promise((resolve, reject) => {
    yauzl.open(path, { lazyEntries: true, autoClose: false }, (err, zip) => (err ? reject(err) : resolve(zip)));
  });
}

function listEntries(zip: yauzl.ZipFile): Promise<Map<string, yauzl.Entry>> {
  return new Promise((resolve, reject) => {
    const entries = new Map<string, yauzl.Entry>();
    zip.on('entry', (e: yauzl.Entry) => {
      // Two entries of one name would let different readers see different data.
      if (entries.has(e.fileName)) {
        reject(new Error(`the zip has two entries named '${e.fileName}'`));
        return;
      }
      entries.set(e.fileName, e);
      zip.readEntry();
    });
    zip.on('end', () => resolve(entries));
    zip.on('error', reject);
    zip.readEntry();
  });
}

/**
 * One entry's bytes, checked against the CRC-32 the zip records (torch writes it; yauzl does
 * not check it), so a corrupted pickle or storage is an error rather than wrong tensors.
 */
function readEntry(zip: yauzl.ZipFile, entry: yauzl.Entry, path: string): Promise<Uint8Array> {
  const failed = (why: string) => new Error(`${path}: zip entry '${entry.fileName}' ${why}; the file is truncated or corrupt`);
  // torch.save stores every entry uncompressed (so that it can be memory-mapped); a deflated one
  // could expand a thousandfold, so a small file could claim gigabytes.
  if (entry.compressionMethod !== 0) {
    return Promise.reject(
      new Error(`${path}: zip entry '${entry.fileName}' is compressed (method ${entry.compressionMethod}); torch.save writes entries uncompressed, so this is not a torch.save checkpoint. Re-save it with torch.save`),
    );
  }
  return new Promise((resolve, reject) => {
    zip.openReadStream(entry, (err, stream) => {
      if (err) return reject(failed(`cannot be read (${err.message})`));
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('error', (e: Error) => reject(failed(`cannot be read (${e.message})`)));
      stream.on('end', () => {
        const data = Buffer.concat(chunks);
        if (zlib.crc32(data) >>> 0 !== entry.crc32 >>> 0) reject(failed('does not match its CRC-32'));
        else resolve(data);
      });
    });
  });
}

/** Read a zip-format torch checkpoint into a TensorMap. */
export async function readTorchZip(path: string): Promise<TensorMap> {
  let zip: yauzl.ZipFile;
  try {
    zip = await openZip(path);
  } catch (err) {
    throw new Error(
      `${path}: not a readable PyTorch zip checkpoint (${(err as Error).message}); the file is probably truncated or corrupt: delete it and download it again`,
    );
  }
  try {
    const entries = await listEntries(zip).catch((err: Error) => {
      throw new Error(`${path}: not a readable PyTorch zip checkpoint (${err.message}); the file is probably truncated or corrupt`);
    });
    const pkl = [...entries.keys()].filter((n) => n === 'data.pkl' || /^[^/]+\/data\.pkl$/.test(n));
    if (pkl.length !== 1) {
      throw new Error(`${path}: expected one '<archive>/data.pkl' entry in the zip, found ${pkl.length}; this is not a torch.save checkpoint`);
    }
    const prefix = pkl[0].slice(0, -'data.pkl'.length);
    const byteorder = entries.get(`${prefix}byteorder`);
    if (byteorder !== undefined) {
      const order = Buffer.from(await readEntry(zip, byteorder, path)).toString('latin1').trim();
      if (order !== 'little') throw new Error(`${path}: storages are ${order}-endian; only little-endian checkpoints are supported`);
    }

    const storages = new Map<string, StorageRef>();
    const pklEntry = entries.get(pkl[0])!;
    if (pklEntry.uncompressedSize > MAX_ENTRY_BYTES) {
      throw new Error(`${path}: '${pkl[0]}' is ${pklEntry.uncompressedSize} bytes, more than the ${MAX_ENTRY_BYTES} a pickle can be read into`);
    }
    const { value } = unpickle(await readEntry(zip, pklEntry, path), {
      resolveGlobal: resolveTorchGlobal,
      persistentLoad: (pid) => {
        const ref = parseStoragePid(pid);
        registerStorage(storages, ref);
        return ref;
      },
      source: `${path}:${pkl[0]}`,
    });
    const refs = collectTensorRefs(value, path);

    // Each storage is read once even when several tensors share it (tied embeddings).
    const bytes = new Map<string, Uint8Array>();
    for (const key of storages.keys()) {
      const entryName = `${prefix}data/${key}`;
      const entry = entries.get(entryName);
      if (entry === undefined) throw new Error(`${path}: storage entry '${entryName}' is missing from the zip`);
      // The pickle's claimed size is checked against the entry before anything is read, so a
      // tiny file cannot make the reader allocate what it claims.
      const ref = storages.get(key)!;
      const claimed = ref.numel * ref.dtype.bytes;
      if (!Number.isSafeInteger(claimed) || entry.uncompressedSize < claimed) {
        throw new Error(
          `${path}: storage '${key}' claims ${ref.numel} ${ref.dtype.code} elements (${claimed} bytes) but its zip entry '${entryName}' holds ${entry.uncompressedSize} bytes; the checkpoint is truncated or corrupt`,
        );
      }
      if (entry.uncompressedSize > MAX_ENTRY_BYTES) {
        throw new Error(`${path}: zip entry '${entryName}' is ${entry.uncompressedSize} bytes, more than the ${MAX_ENTRY_BYTES} one storage can be read into`);
      }
      bytes.set(key, await readEntry(zip, entry, path));
    }
    const out: TensorMap = new Map();
    for (const [name, ref] of refs) out.set(name, materializeTensor(name, ref, bytes.get(ref.storage.key)!, path));
    return out;
  } finally {
    zip.close();
  }
}
