/**
 * A restricted pickle interpreter (protocols 0-4 data opcodes).
 *
 * Why not an npm pickle parser: the ones available (pickleparser, jpickle) resolve unknown
 * globals to placeholder objects and apply REDUCE/BUILD/NEWOBJ to whatever is on the stack, so
 * a whitelist cannot be enforced from the outside. Python's own unpickler executes any callable
 * a pickle names; checkpoints from the internet must never get that. Here a pickle can only
 * build plain data (None, bools, ints, floats, str, bytes, tuples, lists, dicts, sets) and call
 * the callables its {@link GlobalResolver} hands out; every other global, and every opcode that
 * would construct an arbitrary object (INST, OBJ, NEWOBJ, NEWOBJ_EX, EXT*), is refused.
 */

/** Raised for anything the restricted unpickler will not do; the message names the global/opcode. */
export class UnsafePickleError extends Error {
  override name = 'UnsafePickleError';
}

/** A callable the resolver allows; REDUCE calls `call(args)`. Nothing else is ever called. */
export class PyCallable {
  constructor(
    readonly qualname: string,
    readonly call: (args: readonly PyValue[]) => PyValue,
    /** BUILD on an object this callable returned; absent = BUILD is refused for it. */
    readonly build?: (obj: PyValue, state: PyValue) => void,
  ) {}
}

/**
 * Values a pickle can produce. Tuples are frozen arrays (so APPEND on them fails), dicts are
 * Maps keyed by primitive values, and `object` covers opaque values that resolvers return
 * (storage classes, storages, tensors).
 */
export type PyValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | PyValue[]
  | Map<PyKey, PyValue>
  | Set<PyKey>
  | PyCallable
  | object;
export type PyKey = string | number | bigint | boolean | null;

/** Maps `module.name` to an allowed value; throws {@link UnsafePickleError} for anything else. */
export type GlobalResolver = (module: string, name: string) => PyValue;

export interface UnpickleOptions {
  resolveGlobal: GlobalResolver;
  /** BINPERSID/PERSID handler; absent = persistent ids are refused. */
  persistentLoad?: (pid: PyValue) => PyValue;
  /** Used in error messages, e.g. the archive entry name. */
  source?: string;
}

/** One unpickled value and where its STOP opcode ended (the legacy torch format chains pickles). */
export interface UnpickleResult {
  value: PyValue;
  end: number;
}

// MARK pushes the current stack onto `metastack` and starts a fresh one (CPython's layout).
type StackItem = PyValue;

/**
 * The deepest nesting of containers (and of MARKs) a pickle may build. Python's pickler recurses
 * once per level and stops at its recursion limit (1000 by default), so no pickle Python writes
 * nests deeper; a deeper one is hand-made and would overflow code that walks the result.
 */
export const MAX_PICKLE_DEPTH = 1000;
/**
 * The most values a pickle may hold on its stack (all MARK frames together) and in its memo.
 * A state dict uses a few per tensor; the cap stops a few MB of one-byte DUPs or PUTs from
 * becoming gigabytes of references.
 */
export const MAX_PICKLE_ITEMS = 1 << 22;
/** Python itself refuses to convert decimal integers longer than this (sys.int_info.default_max_str_digits). */
const MAX_INT_DIGITS = 4300;

const textDecoder = new TextDecoder('utf-8', { fatal: true });
const latin1 = new TextDecoder('latin1');

/** Run one pickle starting at `offset` of `data`. */
export function unpickle(data: Uint8Array, options: UnpickleOptions, offset = 0): UnpickleResult {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const where = options.source ?? 'pickle';
  let pos = offset;
  let stack: StackItem[] = [];
  const metastack: StackItem[][] = [];
  const memo = new Map<number, PyValue>();
  // Items held in the frames below the current one, so the stack limit counts all of them.
  let savedItems = 0;
  // Nesting depth of each container built here: 1 + the deepest item it held when last filled.
  // (A container changed after it was put inside another does not update its parents; code
  // walking the result still guards itself, as collectTensorRefs does.)
  const depths = new WeakMap<object, number>();

  const fail = (message: string): never => {
    throw new UnsafePickleError(`${where}: ${message} (at byte ${pos})`);
  };
  const need = (n: number): void => {
    if (pos + n > data.length) fail(`truncated: needs ${n} more bytes`);
  };
  const u8 = (): number => {
    need(1);
    return data[pos++];
  };
  const u16 = (): number => {
    need(2);
    const v = view.getUint16(pos, true);
    pos += 2;
    return v;
  };
  const u32 = (): number => {
    need(4);
    const v = view.getUint32(pos, true);
    pos += 4;
    return v;
  };
  const u64 = (): number => {
    need(8);
    const v = view.getBigUint64(pos, true);
    pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail('length does not fit in memory');
    return Number(v);
  };
  const bytes = (n: number): Uint8Array => {
    need(n);
    const b = data.subarray(pos, pos + n);
    pos += n;
    return b;
  };
  const line = (): string => {
    const nl = data.indexOf(0x0a, pos);
    if (nl < 0) fail('truncated: unterminated text argument');
    const s = latin1.decode(data.subarray(pos, nl));
    pos = nl + 1;
    return s;
  };
  const utf8 = (b: Uint8Array): string => {
    try {
      return textDecoder.decode(b);
    } catch {
      return fail('invalid UTF-8 in a string');
    }
  };
  const pop = (): PyValue => {
    if (stack.length === 0) fail('stack underflow');
    return stack.pop()!;
  };
  const top = (): PyValue => {
    if (stack.length === 0) fail('stack underflow');
    return stack[stack.length - 1];
  };
  const popMark = (): PyValue[] => {
    const items = stack;
    if (metastack.length === 0) fail('no MARK for this opcode');
    stack = metastack.pop()!;
    savedItems -= stack.length;
    return items;
  };
  const memoGet = (i: number): PyValue => {
    if (!memo.has(i)) fail(`memo key ${i} was never set`);
    return memo.get(i)!;
  };
  const memoPut = (i: number, v: PyValue): void => {
    if (!Number.isSafeInteger(i) || i < 0) fail(`bad memo key ${i}`);
    if (!memo.has(i) && memo.size >= MAX_PICKLE_ITEMS) fail(`more than ${MAX_PICKLE_ITEMS} memo entries; this is not a checkpoint pickle`);
    memo.set(i, v);
  };
  const depthOf = (v: PyValue): number => (typeof v === 'object' && v !== null ? (depths.get(v) ?? 0) : 0);
  /** Record that `container` now holds `items`; refuses nesting deeper than MAX_PICKLE_DEPTH. */
  const nest = <T extends PyValue>(container: T, items: readonly PyValue[]): T => {
    let d = depths.get(container as object) ?? 1;
    for (const it of items) d = Math.max(d, depthOf(it) + 1);
    if (d > MAX_PICKLE_DEPTH) fail(`containers nested more than ${MAX_PICKLE_DEPTH} deep; Python never writes such a pickle`);
    depths.set(container as object, d);
    return container;
  };
  const asKey = (k: PyValue): PyKey => {
    if (k === null || ['string', 'number', 'bigint', 'boolean'].includes(typeof k)) return k as PyKey;
    return fail(`unsupported dict/set key of type ${describe(k)}`);
  };
  const setItem = (d: PyValue, k: PyValue, v: PyValue): void => {
    if (!(d instanceof Map)) fail(`SETITEM on ${describe(d)}`);
    (d as Map<PyKey, PyValue>).set(asKey(k), v);
    nest(d, [v]);
  };
  const appendTo = (l: PyValue, items: PyValue[]): void => {
    if (!Array.isArray(l) || Object.isFrozen(l)) fail(`APPEND on ${describe(l)}`);
    // A loop, not push(...items): spreading a long list as arguments overflows the call stack.
    for (const it of items) (l as PyValue[]).push(it);
    nest(l, items);
  };
  // Errors from resolver callables get the pickle's name and position, like the VM's own.
  const located = <T>(f: () => T): T => {
    try {
      return f();
    } catch (err) {
      return fail((err as Error).message);
    }
  };
  const resolve = (module: string, name: string): PyValue => {
    try {
      return options.resolveGlobal(module, name);
    } catch (err) {
      return fail((err as Error).message);
    }
  };
  const tuple = (items: PyValue[]): PyValue[] => nest(Object.freeze(items) as PyValue[], items);
  const signedLE = (b: Uint8Array): number | bigint => {
    if (b.length === 0) return 0;
    // One hex conversion (linear) rather than a shift per byte (quadratic in the length).
    let v = BigInt(`0x${Buffer.from(b).reverse().toString('hex')}`);
    if (b[b.length - 1] & 0x80) v -= 1n << BigInt(8 * b.length);
    return Number.isSafeInteger(Number(v)) && BigInt(Number(v)) === v ? Number(v) : v;
  };
  const parseIntText = (s: string): number | bigint => {
    const t = s.endsWith('L') ? s.slice(0, -1) : s;
    if (t.length > MAX_INT_DIGITS) fail(`integer literal of ${t.length} digits (Python refuses more than ${MAX_INT_DIGITS})`);
    if (!/^[-+]?\d+$/.test(t)) fail(`bad integer literal '${s.slice(0, 40)}'`);
    const v = BigInt(t);
    return Number.isSafeInteger(Number(v)) ? Number(v) : v;
  };

  for (;;) {
    if (stack.length + savedItems > MAX_PICKLE_ITEMS) fail(`more than ${MAX_PICKLE_ITEMS} values on the pickle stack; this is not a checkpoint pickle`);
    const opAt = pos;
    const op = u8();
    switch (op) {
      case 0x80: // PROTO
        if (u8() > 5) fail('unknown pickle protocol');
        break;
      case 0x95: // FRAME: framing is only a read-ahead hint
        u64();
        break;
      case 0x2e: // STOP
        return { value: pop(), end: pos };
      case 0x28: // MARK
        if (metastack.length >= MAX_PICKLE_DEPTH) fail(`MARKs nested more than ${MAX_PICKLE_DEPTH} deep; Python never writes such a pickle`);
        metastack.push(stack);
        savedItems += stack.length;
        stack = [];
        break;
      case 0x30: // POP (on an empty frame it drops the MARK, as CPython does)
        if (stack.length > 0) stack.pop();
        else popMark();
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        stack.push(top());
        break;
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x88: // NEWTRUE
        stack.push(true);
        break;
      case 0x89: // NEWFALSE
        stack.push(false);
        break;
      case 0x4a: // BININT
        need(4);
        stack.push(view.getInt32(pos, true));
        pos += 4;
        break;
      case 0x4b: // BININT1
        stack.push(u8());
        break;
      case 0x4d: // BININT2
        stack.push(u16());
        break;
      case 0x8a: // LONG1
        stack.push(signedLE(bytes(u8())));
        break;
      case 0x8b: // LONG4
        stack.push(signedLE(bytes(u32())));
        break;
      case 0x49: {
        // INT (text); protocol 0 writes bools as I01/I00
        const s = line();
        stack.push(s === '01' ? true : s === '00' ? false : parseIntText(s));
        break;
      }
      case 0x4c: // LONG (text)
        stack.push(parseIntText(line()));
        break;
      case 0x46: {
        // FLOAT (text)
        const f = Number(line());
        stack.push(f);
        break;
      }
      case 0x47: // BINFLOAT (big-endian, as pickle defines it)
        need(8);
        stack.push(view.getFloat64(pos, false));
        pos += 8;
        break;
      case 0x58: // BINUNICODE
        stack.push(utf8(bytes(u32())));
        break;
      case 0x8c: // SHORT_BINUNICODE
        stack.push(utf8(bytes(u8())));
        break;
      case 0x8d: // BINUNICODE8
        stack.push(utf8(bytes(u64())));
        break;
      case 0x56: // UNICODE (raw-unicode-escape text)
        stack.push(line().replace(/\\u([0-9a-fA-F]{4})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16))));
        break;
      case 0x54: // BINSTRING (Python 2 str): decoded as latin-1, as torch.load(encoding='latin1') does
        need(4);
        {
          const n = view.getInt32(pos, true);
          pos += 4;
          if (n < 0) fail('negative BINSTRING length');
          stack.push(latin1.decode(bytes(n)));
        }
        break;
      case 0x55: // SHORT_BINSTRING
        stack.push(latin1.decode(bytes(u8())));
        break;
      case 0x42: // BINBYTES
        stack.push(bytes(u32()).slice());
        break;
      case 0x43: // SHORT_BINBYTES
        stack.push(bytes(u8()).slice());
        break;
      case 0x8e: // BINBYTES8
        stack.push(bytes(u64()).slice());
        break;
      case 0x29: // EMPTY_TUPLE
        stack.push(tuple([]));
        break;
      case 0x85: // TUPLE1
        stack.push(tuple([pop()]));
        break;
      case 0x86: {
        // TUPLE2
        const b = pop();
        const a = pop();
        stack.push(tuple([a, b]));
        break;
      }
      case 0x87: {
        // TUPLE3
        const c = pop();
        const b = pop();
        const a = pop();
        stack.push(tuple([a, b, c]));
        break;
      }
      case 0x74: {
        // TUPLE (popMark swaps `stack`, so take the items before pushing)
        const items = tuple(popMark());
        stack.push(items);
        break;
      }
      case 0x5d: // EMPTY_LIST
        stack.push([]);
        break;
      case 0x6c: {
        // LIST
        const items = popMark();
        stack.push(nest(items, items));
        break;
      }
      case 0x61: {
        // APPEND
        const v = pop();
        appendTo(top(), [v]);
        break;
      }
      case 0x65: {
        // APPENDS
        const items = popMark();
        appendTo(top(), items);
        break;
      }
      case 0x7d: // EMPTY_DICT
        stack.push(new Map<PyKey, PyValue>());
        break;
      case 0x64: {
        // DICT
        const items = popMark();
        const d = new Map<PyKey, PyValue>();
        for (let i = 0; i + 1 < items.length; i += 2) setItem(d, items[i], items[i + 1]);
        stack.push(nest(d, []));
        break;
      }
      case 0x73: {
        // SETITEM
        const v = pop();
        const k = pop();
        setItem(top(), k, v);
        break;
      }
      case 0x75: {
        // SETITEMS
        const items = popMark();
        const d = top();
        if (items.length % 2 !== 0) fail('SETITEMS with an odd number of items');
        for (let i = 0; i < items.length; i += 2) setItem(d, items[i], items[i + 1]);
        break;
      }
      case 0x8f: // EMPTY_SET
        stack.push(new Set<PyKey>());
        break;
      case 0x90: {
        // ADDITEMS
        const items = popMark();
        const s = top();
        if (!(s instanceof Set)) fail(`ADDITEMS on ${describe(s)}`);
        for (const it of items) (s as Set<PyKey>).add(asKey(it));
        nest(s, []);
        break;
      }
      case 0x91: {
        // FROZENSET
        const items = new Set(popMark().map(asKey));
        stack.push(items);
        break;
      }
      case 0x70: // PUT (text)
        memoPut(Number(line()), top());
        break;
      case 0x71: // BINPUT
        memoPut(u8(), top());
        break;
      case 0x72: // LONG_BINPUT
        memoPut(u32(), top());
        break;
      case 0x94: // MEMOIZE
        memoPut(memo.size, top());
        break;
      case 0x67: // GET (text)
        stack.push(memoGet(Number(line())));
        break;
      case 0x68: // BINGET
        stack.push(memoGet(u8()));
        break;
      case 0x6a: // LONG_BINGET
        stack.push(memoGet(u32()));
        break;
      case 0x63: {
        // GLOBAL
        const module = line();
        const name = line();
        stack.push(resolve(module, name));
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') fail('STACK_GLOBAL with non-string names');
        stack.push(resolve(module as string, name as string));
        break;
      }
      case 0x52: {
        // REDUCE: the only way a pickle calls anything, and only resolver-approved callables
        const args = pop();
        const fn = pop();
        if (!(fn instanceof PyCallable)) fail(`REDUCE on ${describe(fn)}, which is not an allowed callable`);
        if (!Array.isArray(args)) fail(`REDUCE arguments are ${describe(args)}, not a tuple`);
        stack.push(located(() => (fn as PyCallable).call(args as PyValue[])));
        break;
      }
      case 0x62: {
        // BUILD (setstate): only for objects whose maker said how
        const state = pop();
        const obj = top();
        const maker = builtBy.get(obj as object);
        if (maker?.build === undefined) fail(`BUILD on ${describe(obj)} is not allowed`);
        located(() => maker!.build!(obj, state));
        break;
      }
      case 0x51: {
        // BINPERSID
        const pid = pop();
        if (options.persistentLoad === undefined) fail('persistent ids are not allowed in this pickle');
        stack.push(located(() => options.persistentLoad!(pid)));
        break;
      }
      case 0x50: {
        // PERSID (text)
        const pid = line();
        if (options.persistentLoad === undefined) fail('persistent ids are not allowed in this pickle');
        stack.push(located(() => options.persistentLoad!(pid)));
        break;
      }
      case 0x69: {
        // INST names a class and instantiates it: refused, but name it
        const module = line();
        const name = line();
        fail(`refusing INST of ${module}.${name}: constructing arbitrary objects is not allowed`);
        break;
      }
      case 0x6f:
      case 0x81:
      case 0x92:
        fail(`refusing opcode ${opName(op)}: constructing arbitrary objects is not allowed`);
        break;
      case 0x82:
      case 0x83:
      case 0x84:
        fail(`refusing opcode ${opName(op)}: extension registry globals are not allowed`);
        break;
      default:
        pos = opAt;
        fail(`unsupported pickle opcode 0x${op.toString(16)}${op >= 0x20 && op < 0x7f ? ` ('${String.fromCharCode(op)}')` : ''}`);
    }
  }
}

/**
 * Which callable produced an object, so that BUILD can ask it. A WeakMap keeps this out of the
 * values themselves (a pickle cannot forge an entry).
 */
const builtBy = new WeakMap<object, PyCallable>();

/** Record that `callable` made `obj` (resolvers call this from `PyCallable.call`). */
export function markBuiltBy<T extends object>(obj: T, callable: PyCallable): T {
  builtBy.set(obj, callable);
  return obj;
}

function opName(op: number): string {
  const names: Record<number, string> = {
    0x6f: 'OBJ',
    0x81: 'NEWOBJ',
    0x92: 'NEWOBJ_EX',
    0x82: 'EXT1',
    0x83: 'EXT2',
    0x84: 'EXT4',
  };
  return names[op] ?? `0x${op.toString(16)}`;
}

/** Short description of a value for error messages. */
export function describe(v: unknown): string {
  if (v === null) return 'None';
  if (v instanceof PyCallable) return v.qualname;
  if (Array.isArray(v)) return Object.isFrozen(v) ? 'a tuple' : 'a list';
  if (v instanceof Map) return 'a dict';
  if (v instanceof Set) return 'a set';
  if (v instanceof Uint8Array) return 'bytes';
  if (typeof v === 'object') {
    const tag = (v as { describe?: () => string }).describe;
    return typeof tag === 'function' ? tag.call(v) : 'an object';
  }
  return `a ${typeof v}`;
}
