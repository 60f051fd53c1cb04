/**
 * The only Python globals a torch checkpoint pickle may name, and what they become here.
 * Everything a `state_dict()` saved by torch.save needs is: an OrderedDict, the tensor rebuild
 * functions, and the typed storage classes named in persistent ids. Nothing here runs code from
 * the file: the "callables" only record their arguments.
 */
import { PyCallable, UnsafePickleError, markBuiltBy, describe, type PyValue, type PyKey } from './pickle.js';

/** Element types a checkpoint storage can hold, with the safetensors-style code used in RawTensor.sourceDtype. */
export interface StorageDtype {
  /** torch storage class name, e.g. `FloatStorage`. */
  storageClass: string;
  /** `F32`, `F16`, `BF16`, `F64`, `I64`, `I32`. */
  code: 'F32' | 'F16' | 'BF16' | 'F64' | 'I64' | 'I32';
  bytes: number;
}

const STORAGE_DTYPES: readonly StorageDtype[] = [
  { storageClass: 'FloatStorage', code: 'F32', bytes: 4 },
  { storageClass: 'HalfStorage', code: 'F16', bytes: 2 },
  { storageClass: 'BFloat16Storage', code: 'BF16', bytes: 2 },
  { storageClass: 'DoubleStorage', code: 'F64', bytes: 8 },
  { storageClass: 'LongStorage', code: 'I64', bytes: 8 },
  { storageClass: 'IntStorage', code: 'I32', bytes: 4 },
];

/** The value GLOBAL `torch FloatStorage` (etc.) resolves to. */
export class StorageClass {
  constructor(readonly dtype: StorageDtype) {}
  describe(): string {
    return `torch.${this.dtype.storageClass}`;
  }
}

/** A storage named by a persistent id; its bytes are read from the container afterwards. */
export class StorageRef {
  constructor(
    /** The key: `data/<key>` in a zip checkpoint, the storage key in a legacy one. */
    readonly key: string,
    readonly dtype: StorageDtype,
    /** Number of elements the pickle says the storage has. */
    readonly numel: number,
    /** Legacy format only: this storage is a view starting `viewOffset` elements into `key`. */
    readonly viewOffset = 0,
    /** Legacy format only: the view's element count (absent = the whole storage from `viewOffset`). */
    readonly viewSize?: number,
  ) {}
  describe(): string {
    return `storage '${this.key}'`;
  }
}

/**
 * Record a storage named by a persistent id. One key may be named many times (tied weights, and
 * legacy views of one root storage), but always with the same element type and size: a file that
 * names one storage two ways would be read differently by different tensors.
 */
export function registerStorage(storages: Map<string, StorageRef>, ref: StorageRef): void {
  const seen = storages.get(ref.key);
  if (seen === undefined) {
    storages.set(ref.key, ref);
    return;
  }
  if (seen.dtype !== ref.dtype || seen.numel !== ref.numel) {
    throw new UnsafePickleError(
      `storage '${ref.key}' is named as ${seen.dtype.storageClass}(${seen.numel}) and as ${ref.dtype.storageClass}(${ref.numel}); the checkpoint is corrupt`,
    );
  }
}

/** A tensor the pickle asked for: a strided view into a storage. */
export class TensorRef {
  constructor(
    readonly storage: StorageRef,
    readonly offset: number,
    readonly size: number[],
    readonly stride: number[],
  ) {}
  describe(): string {
    return `a tensor of shape [${this.size.join(', ')}]`;
  }
}

function intArg(v: PyValue, what: string, fn: string): number {
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return v;
  throw new UnsafePickleError(`${fn}: ${what} must be a non-negative int, got ${describe(v)}`);
}

function intTuple(v: PyValue, what: string, fn: string): number[] {
  if (!Array.isArray(v)) throw new UnsafePickleError(`${fn}: ${what} must be a tuple, got ${describe(v)}`);
  return (v as PyValue[]).map((x) => intArg(x, what, fn));
}

function asStorage(v: PyValue, fn: string): StorageRef {
  if (v instanceof StorageRef) return v;
  throw new UnsafePickleError(`${fn}: first argument must be a storage, got ${describe(v)}`);
}

const orderedDict: PyCallable = new PyCallable(
  'collections.OrderedDict',
  (args) => {
    if (args.length !== 0) throw new UnsafePickleError('collections.OrderedDict: only the empty constructor is allowed');
    return markBuiltBy(new Map<PyKey, PyValue>(), orderedDict);
  },
  // state_dict() pickles its `_metadata` (per-module version numbers) as instance state:
  // accepted and dropped, since it only drives Python-side load hooks.
  (_obj, state) => {
    if (state !== null && !(state instanceof Map)) {
      throw new UnsafePickleError(`BUILD on collections.OrderedDict with ${describe(state)} as state`);
    }
  },
);

const rebuildTensorV2 = new PyCallable('torch._utils._rebuild_tensor_v2', (args) => {
  const fn = 'torch._utils._rebuild_tensor_v2';
  // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
  if (args.length < 4 || args.length > 7) throw new UnsafePickleError(`${fn}: expected 6 or 7 arguments, got ${args.length}`);
  const hooks = args[5];
  if (hooks instanceof Map && hooks.size > 0) throw new UnsafePickleError(`${fn}: backward hooks are not supported`);
  return new TensorRef(asStorage(args[0], fn), intArg(args[1], 'storage_offset', fn), intTuple(args[2], 'size', fn), intTuple(args[3], 'stride', fn));
});

const rebuildTensor = new PyCallable('torch._utils._rebuild_tensor', (args) => {
  const fn = 'torch._utils._rebuild_tensor';
  if (args.length !== 4) throw new UnsafePickleError(`${fn}: expected 4 arguments, got ${args.length}`);
  return new TensorRef(asStorage(args[0], fn), intArg(args[1], 'storage_offset', fn), intTuple(args[2], 'size', fn), intTuple(args[3], 'stride', fn));
});

// nn.Parameter objects (a state dict saved with keep_vars=True, or a pickled module's params).
const rebuildParameter = new PyCallable('torch._utils._rebuild_parameter', (args) => {
  if (!(args[0] instanceof TensorRef)) {
    throw new UnsafePickleError(`torch._utils._rebuild_parameter: first argument must be a tensor, got ${describe(args[0])}`);
  }
  return args[0];
});

const ALLOWED: ReadonlyMap<string, PyValue> = new Map<string, PyValue>([
  ['collections.OrderedDict', orderedDict],
  ['torch._utils._rebuild_tensor_v2', rebuildTensorV2],
  ['torch._utils._rebuild_tensor', rebuildTensor],
  ['torch._utils._rebuild_parameter', rebuildParameter],
  ...STORAGE_DTYPES.map((d): [string, PyValue] => [`torch.${d.storageClass}`, new StorageClass(d)]),
]);

/**
 * The global whitelist for torch checkpoints. Anything else, `os.system` included, is refused
 * before it could matter: the error names it so the user knows what the file tried to load.
 */
export function resolveTorchGlobal(module: string, name: string): PyValue {
  const qualname = `${module}.${name}`;
  const v = ALLOWED.get(qualname);
  if (v !== undefined) return v;
  if (module === 'torch' && name.endsWith('Storage')) {
    throw new UnsafePickleError(
      `unsupported storage type ${qualname}: only ${STORAGE_DTYPES.map((d) => d.storageClass).join(', ')} can be loaded`,
    );
  }
  throw new UnsafePickleError(
    `refusing to load global '${qualname}': a checkpoint may only reference ${[...ALLOWED.keys()].filter((k) => !k.endsWith('Storage')).join(', ')} and torch storage classes. ` +
      'This file is not a plain state_dict (or was crafted to run code); re-save it with torch.save(model.state_dict()) or convert it to safetensors',
  );
}

/**
 * Persistent ids as torch.save writes them: `('storage', StorageClass, key, location, numel)`,
 * plus, in the legacy format, a sixth element `view_metadata` = None or `(view_key, offset, size)`.
 */
export function parseStoragePid(pid: PyValue): StorageRef {
  if (!Array.isArray(pid) || pid.length < 5 || pid[0] !== 'storage') {
    throw new UnsafePickleError(`unsupported persistent id ${describe(pid)} (expected ('storage', type, key, location, numel))`);
  }
  const [, cls, key, , numel, view] = pid as PyValue[];
  if (!(cls instanceof StorageClass)) throw new UnsafePickleError(`persistent id names ${describe(cls)} instead of a storage class`);
  if (typeof key !== 'string') throw new UnsafePickleError(`persistent id key is ${describe(key)}, not a str`);
  const n = intArg(numel ?? null, 'numel', `storage '${key}'`);
  if (view !== undefined && view !== null) {
    if (!Array.isArray(view) || view.length !== 3) throw new UnsafePickleError(`storage '${key}': malformed view metadata`);
    const [viewKey, viewOffset, viewSize] = view as PyValue[];
    if (typeof viewKey !== 'string') throw new UnsafePickleError(`storage '${key}': malformed view metadata`);
    // The bytes live in the root storage `key`; the view shifts where tensors start and bounds them.
    const offset = intArg(viewOffset, 'view offset', `storage '${key}'`);
    const size = intArg(viewSize, 'view size', `storage '${key}'`);
    if (offset + size > n) {
      throw new UnsafePickleError(`storage '${key}': view [${offset}, ${offset + size}) lies outside the storage's ${n} elements`);
    }
    return new StorageRef(key, cls.dtype, n, offset, size);
  }
  return new StorageRef(key, cls.dtype, n);
}
