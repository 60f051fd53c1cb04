/**
 * torch.save's container before torch 1.6 (and with `_use_new_zipfile_serialization=False`):
 * pickles back to back (magic number, protocol version, sys_info, the object, the list of
 * storage keys), then each storage's raw bytes preceded by its element count as an int64.
 */
import { readFile } from 'node:fs/promises';
import type { TensorMap } from '../raw-tensor.js';
import { unpickle, UnsafePickleError, type PyValue } from './pickle.js';
import { parseStoragePid, registerStorage, resolveTorchGlobal, type StorageRef } from './torch-globals.js';
import { collectTensorRefs } from './state-dict.js';
import { materializeTensor } from './materialize.js';

const MAGIC = 0x1950a86a20f9469cfc6cn;
const PROTOCOL_VERSION = 1001;

// The header pickles are plain data; no globals or persistent ids belong in them.
const noGlobals = (module: string, name: string): never => {
  throw new UnsafePickleError(`refusing to load global '${module}.${name}' in a checkpoint header`);
};

/** Read a legacy (non-zip) torch checkpoint into a TensorMap. */
export async function readTorchLegacy(path: string, data?: Uint8Array): Promise<TensorMap> {
  const buf = data ?? (await readFile(path));
  let pos = 0;
  const next = (what: string, withStorages = false, storages?: Map<string, StorageRef>): PyValue => {
    const r = unpickle(buf, {
      resolveGlobal: withStorages ? resolveTorchGlobal : noGlobals,
      persistentLoad: withStorages
        ? (pid) => {
            const ref = parseStoragePid(pid);
            registerStorage(storages!, ref);
            return ref;
          }
        : undefined,
      source: `${path} (${what})`,
    }, pos);
    pos = r.end;
    return r.value;
  };

  const magic = next('magic number');
  if (magic !== MAGIC) throw new Error(`${path}: not a PyTorch checkpoint (bad magic number)`);
  const protocol = next('protocol version');
  if (protocol !== PROTOCOL_VERSION) throw new Error(`${path}: unsupported legacy protocol version ${String(protocol)}`);
  const sysInfo = next('sys_info');
  if (sysInfo instanceof Map && sysInfo.get('little_endian') === false) {
    throw new Error(`${path}: written on a big-endian machine; only little-endian checkpoints are supported`);
  }
  const storages = new Map<string, StorageRef>();
  const refs = collectTensorRefs(next('state_dict', true, storages), path);
  const keys = next('storage keys');
  if (!Array.isArray(keys) || !keys.every((k) => typeof k === 'string')) {
    throw new Error(`${path}: malformed storage key list`);
  }

  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const bytes = new Map<string, Uint8Array>();
  for (const key of keys as string[]) {
    const ref = storages.get(key);
    if (ref === undefined) throw new Error(`${path}: storage '${key}' is listed but no tensor uses it, so its element size is unknown`);
    if (pos + 8 > buf.length) throw new Error(`${path}: truncated before storage '${key}'`);
    if (bytes.has(key)) throw new Error(`${path}: storage '${key}' is listed twice`);
    const stored = view.getBigInt64(pos, true);
    pos += 8;
    // The element count before the bytes must be the one the pickle named; both are checked
    // against the bytes left before anything is sliced.
    if (stored !== BigInt(ref.numel)) {
      throw new Error(`${path}: storage '${key}' has ${stored} elements in the file but ${ref.numel} in the pickle; the checkpoint is corrupt`);
    }
    const n = ref.numel * ref.dtype.bytes;
    if (pos + n > buf.length) throw new Error(`${path}: truncated inside storage '${key}' (needs ${n} bytes, ${buf.length - pos} left)`);
    bytes.set(key, buf.subarray(pos, pos + n));
    pos += n;
  }
  const out: TensorMap = new Map();
  for (const [name, ref] of refs) {
    const b = bytes.get(ref.storage.key);
    if (b === undefined) throw new Error(`${path}: tensor '${name}' uses storage '${ref.storage.key}', which is not in the file`);
    out.set(name, materializeTensor(name, ref, b, path));
  }
  return out;
}
