// Hostile and corrupted PyTorch .bin files: expanded views, size claims, pickle nesting and
// size bombs, and fuzzing of a real checkpoint. Every outcome is a clean Error naming the file,
// or exactly the original tensors.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { readPytorchCheckpoint, UnsafePickleError } from '../../src/loaders/pytorch/index.js';
import { MAX_PICKLE_DEPTH, MAX_PICKLE_ITEMS, unpickle } from '../../src/loaders/pytorch/pickle.js';
import { resolveTorchGlobal } from '../../src/loaders/pytorch/torch-globals.js';
import { PickleWriter } from '../helpers/pickle-writer.js';
import { writeStoredZip } from '../helpers/write-zip.js';
import { fixture } from '../helpers.js';

const tmp = mkdtempSync(join(tmpdir(), 'tessera-hostile-bin-'));
let fileNo = 0;

interface Item {
  name: string;
  cls?: string;
  key: string;
  numel: number;
  offset?: number;
  size: number[];
  stride: number[];
}

/** A zip checkpoint holding `items` (tensor views) over `storages` (key -> bytes). */
function zipCheckpoint(items: Item[], storages: Record<string, Uint8Array>, extra: Array<[string, Uint8Array]> = []): string {
  const w = new PickleWriter().proto(2).global('collections', 'OrderedDict').emptyTuple().reduce().mark();
  for (const it of items) w.tensorItem(it.name, { cls: it.cls ?? 'FloatStorage', offset: 0, ...it });
  w.setitems().stop();
  const entries: Array<[string, Uint8Array]> = [['archive/data.pkl', w.bytes()]];
  for (const [k, b] of Object.entries(storages)) entries.push([`archive/data/${k}`, b]);
  return save(writeStoredZip([...entries, ...extra, ['archive/version', Buffer.from('3\n')]]));
}

function save(bytes: Uint8Array): string {
  const p = join(tmp, `f${fileNo++}.bin`);
  writeFileSync(p, bytes);
  return p;
}

/** The error a read rejects with: an Error (or UnsafePickleError) naming the file, never a TypeError/RangeError. */
async function readError(path: string): Promise<Error> {
  const err = await readPytorchCheckpoint(path).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, 'expected the read to fail').toBeInstanceOf(Error);
  expect([Error, UnsafePickleError]).toContain((err as Error).constructor);
  expect((err as Error).message).toContain(path);
  return err as Error;
}

const f32 = (n: number) => new Uint8Array(new Float32Array(n).map((_, i) => i).buffer);

describe('tensor views', () => {
  it('a stride-0 view expanding 1 element to 2^30 is refused before anything is allocated', async () => {
    const path = zipCheckpoint([{ name: 'w', key: '0', numel: 1, size: [2 ** 30], stride: [0] }], { '0': f32(1) });
    expect(readFileSync(path).length).toBeLessThan(1024);
    const before = process.memoryUsage().arrayBuffers;
    const err = await readError(path);
    expect(err.message).toMatch(/tensor 'w': view size \[1073741824\], stride \[0\] has 1073741824 elements but its storage '0' holds 1: an expanded \(stride-0 or overlapping\) view, which checkpoints of model parameters never contain/);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(64 * 2 ** 20);
  });

  it('overlapping strides that read more elements than the storage has are refused', async () => {
    const err = await readError(zipCheckpoint([{ name: 'w', key: '0', numel: 8, size: [4, 4], stride: [1, 1] }], { '0': f32(8) }));
    expect(err.message).toMatch(/tensor 'w': .* has 16 elements but its storage '0' holds 8/);
  });

  it('a view reaching past its storage is refused', async () => {
    const err = await readError(zipCheckpoint([{ name: 'w', key: '0', numel: 4, offset: 1, size: [2], stride: [3] }], { '0': f32(4) }));
    expect(err.message).toMatch(/tensor 'w': view \(offset 1, size \[2\], stride \[3\]\) reaches element 4 but storage '0' holds 4 F32 elements/);
  });

  it('ranks that differ, negative or unsafe sizes are refused naming the file', async () => {
    expect((await readError(zipCheckpoint([{ name: 'w', key: '0', numel: 4, size: [2, 2], stride: [1] }], { '0': f32(4) }))).message).toMatch(
      /tensor 'w': size has 2 dims but stride has 1/,
    );
    const negative = zipCheckpoint([{ name: 'w', key: '0', numel: 4, size: [-2], stride: [1] }], { '0': f32(4) });
    expect((await readError(negative)).message).toMatch(/data\.pkl: .*size must be a non-negative int, got a number/);
    // 2^60 as a pickle LONG1: a bigint, refused as a size.
    const w = new PickleWriter().proto(2).global('collections', 'OrderedDict').emptyTuple().reduce().mark();
    w.str('w').global('torch._utils', '_rebuild_tensor_v2').mark();
    w.mark().str('storage').global('torch', 'FloatStorage').str('0').str('cpu').int(4).tuple().binpersid();
    w.int(0).mark().long1(2n ** 60n).tuple().ints([1]).bool(false).global('collections', 'OrderedDict').emptyTuple().reduce().tuple().reduce();
    w.setitems().stop();
    const big = save(writeStoredZip([['archive/data.pkl', w.bytes()], ['archive/data/0', f32(4)]]));
    expect((await readError(big)).message).toMatch(/size must be a non-negative int, got a bigint/);
  });

  it('a storage claiming more elements than its zip entry holds is refused before reading it', async () => {
    const err = await readError(zipCheckpoint([{ name: 'w', key: '0', numel: 2_000_000_000, size: [4], stride: [1] }], { '0': f32(4) }));
    expect(err.message).toMatch(/storage '0' claims 2000000000 F32 elements \(8000000000 bytes\) but its zip entry 'archive\/data\/0' holds 16 bytes/);
  });

  it('one storage named with two element types is refused', async () => {
    const err = await readError(
      zipCheckpoint(
        [
          { name: 'a', key: '0', numel: 4, size: [4], stride: [1] },
          { name: 'b', cls: 'LongStorage', key: '0', numel: 2, size: [2], stride: [1] },
        ],
        { '0': f32(4) },
      ),
    );
    expect(err.message).toMatch(/storage '0' is named as FloatStorage\(4\) and as LongStorage\(2\)/);
  });

  it('two zip entries with one name, and a corrupted entry (CRC-32), are refused', async () => {
    const dup = zipCheckpoint([{ name: 'w', key: '0', numel: 4, size: [4], stride: [1] }], { '0': f32(4) }, [['archive/data/0', f32(4)]]);
    expect((await readError(dup)).message).toMatch(/two entries named 'archive\/data\/0'/);
    const bin = Buffer.from(readFileSync(fixture('mamba-ssm-tiny/pytorch_model.bin')));
    const at = bin.indexOf('pytorch_model/data/0') + 'pytorch_model/data/0'.length + 100;
    bin[at] ^= 0x40;
    expect((await readError(save(bin))).message).toMatch(/zip entry 'pytorch_model\/data\/0' does not match its CRC-32/);
  });

  it('a deflated entry (a small file that could inflate to gigabytes) is refused; the same entry stored loads', async () => {
    const w = new PickleWriter().proto(2).global('collections', 'OrderedDict').emptyTuple().reduce().mark();
    w.tensorItem('w', { cls: 'FloatStorage', offset: 0, key: '0', numel: 1 << 16, size: [1 << 16], stride: [1] });
    w.setitems().stop();
    const entries: Array<[string, Uint8Array]> = [['archive/data.pkl', w.bytes()], ['archive/data/0', new Uint8Array(4 << 16)]];
    const bomb = save(writeStoredZip(entries, new Set(['archive/data/0'])));
    expect((await readError(bomb)).message).toMatch(/zip entry 'archive\/data\/0' is compressed \(method 8\); torch\.save writes entries uncompressed/);
    expect((await readPytorchCheckpoint(save(writeStoredZip(entries)))).get('w')?.shape).toEqual([1 << 16]);
  });
});

describe('pickle limits', () => {
  const opts = { resolveGlobal: resolveTorchGlobal, source: 'x/data.pkl' };
  const run = (w: PickleWriter) => unpickle(w.bytes(), opts);

  it(`MARKs nested more than ${MAX_PICKLE_DEPTH} deep are refused`, () => {
    const w = new PickleWriter().proto(2);
    for (let i = 0; i < MAX_PICKLE_DEPTH + 5; i++) w.mark();
    expect(() => run(w)).toThrow(/x\/data\.pkl: MARKs nested more than 1000 deep/);
  });

  it('containers nested deeper than the limit are refused, however they are built', () => {
    const tuples = new PickleWriter().proto(2).emptyTuple();
    for (let i = 0; i < MAX_PICKLE_DEPTH + 5; i++) tuples.op(0x85); // TUPLE1
    expect(() => run(tuples.stop())).toThrow(/containers nested more than 1000 deep/);
    // Lists wrapped level by level through the memo: [x], [[x]], ... (APPEND tracks the depth).
    const lists = new PickleWriter().proto(2).emptyList();
    for (let i = 0; i < MAX_PICKLE_DEPTH + 5; i++) lists.op(0x71, 0, 0x30).emptyList().get(0).op(0x61);
    expect(() => run(lists.stop())).toThrow(/containers nested more than 1000 deep/);
    // Nested dicts as Python writes them: outer first, each filled before its parent.
    const dicts = new PickleWriter().proto(2);
    for (let i = 0; i < MAX_PICKLE_DEPTH + 5; i++) dicts.emptyDict().str('k');
    dicts.none();
    for (let i = 0; i < MAX_PICKLE_DEPTH + 5; i++) dicts.op(0x73);
    expect(() => run(dicts.stop())).toThrow(/containers nested more than 1000 deep/);
    // Just under the limit is fine.
    const ok = new PickleWriter().proto(2).emptyTuple();
    for (let i = 0; i < MAX_PICKLE_DEPTH - 1; i++) ok.op(0x85);
    expect(() => run(ok.stop())).not.toThrow();
  });

  it('a state dict nested deeper than the limit through the memo (after the fact) is refused by the walk', async () => {
    // 1100 empty dicts memoised, then d[i]['a'] = d[i+1] in order: each SETITEM sees a flat value.
    const n = MAX_PICKLE_DEPTH + 100;
    const w = new PickleWriter().proto(2);
    for (let i = 0; i < n; i++) w.emptyDict().op(0x72, ...u32(i)).op(0x30); // LONG_BINPUT i, POP
    for (let i = 0; i + 1 < n; i++) w.op(0x6a, ...u32(i)).str('a').op(0x6a, ...u32(i + 1)).op(0x73).op(0x30); // get d_i, 'a', d_i+1, SETITEM, POP
    w.op(0x6a, ...u32(0)).stop();
    const path = save(writeStoredZip([['archive/data.pkl', w.bytes()]]));
    expect((await readError(path)).message).toMatch(/dicts nested more than 1000 deep under 'a\.a\.a/);
  });

  it('a dict that contains itself is refused, not walked forever', async () => {
    const w = new PickleWriter().proto(2).emptyDict().put().str('self').get(0).op(0x73).stop();
    expect((await readError(save(writeStoredZip([['archive/data.pkl', w.bytes()]])))).message).toMatch(/the dict at 'self' contains itself/);
  });

  it('a dict reached along 2^40 paths exhausts the entry budget instead of hanging', async () => {
    const levels = 40;
    const w = new PickleWriter().proto(2);
    w.emptyDict().op(0x72, ...u32(levels)).op(0x30);
    for (let i = levels - 1; i >= 0; i--) {
      w.emptyDict().mark().str('a').op(0x6a, ...u32(i + 1)).str('b').op(0x6a, ...u32(i + 1)).setitems().op(0x72, ...u32(i)).op(0x30);
    }
    w.op(0x6a, ...u32(0)).stop();
    const started = Date.now();
    expect((await readError(save(writeStoredZip([['archive/data.pkl', w.bytes()]])))).message).toMatch(
      new RegExp(`more than ${MAX_PICKLE_ITEMS} entries once nested dicts are flattened`),
    );
    expect(Date.now() - started).toBeLessThan(20_000);
  });

  it(`more than ${MAX_PICKLE_ITEMS} stack values or memo entries are refused`, () => {
    const dups = new Uint8Array(MAX_PICKLE_ITEMS + 10).fill(0x32);
    const stack = Uint8Array.from([0x80, 2, 0x4e, ...dups.subarray(0, 0)]);
    const pickle = new Uint8Array(stack.length + dups.length);
    pickle.set(stack);
    pickle.set(dups, stack.length);
    expect(() => unpickle(pickle, opts)).toThrow(/more than 4194304 values on the pickle stack/);
    // MEMOIZE (0x94) over one value, many times.
    const memo = new Uint8Array(3 + MAX_PICKLE_ITEMS + 10).fill(0x94);
    memo.set([0x80, 4, 0x4e]);
    expect(() => unpickle(memo, opts)).toThrow(/more than 4194304 memo entries/);
  });

  it('values hidden below MARKs count toward the stack limit', () => {
    const per = 1 << 20;
    const parts: number[] = [0x80, 2, 0x4e];
    for (let f = 0; f < 5; f++) {
      for (let i = 0; i < per; i++) parts.push(0x32);
      parts.push(0x28);
      parts.push(0x4e);
    }
    expect(() => unpickle(Uint8Array.from(parts), opts)).toThrow(/values on the pickle stack/);
  });

  it('a long APPENDS does not overflow the call stack', () => {
    const n = 500_000;
    const bytes = new Uint8Array(6 + n);
    bytes.set([0x80, 2, 0x5d, 0x28]);
    bytes.fill(0x4e, 4, 4 + n);
    bytes.set([0x65, 0x2e], 4 + n);
    const { value } = unpickle(bytes, opts);
    expect((value as unknown[]).length).toBe(n);
  });

  it('huge integers cost linear time; over-long decimal literals are refused as Python does', () => {
    const n = 400_000;
    const long4 = new Uint8Array(2 + 5 + n + 1);
    long4.set([0x80, 2, 0x8b]);
    new DataView(long4.buffer).setUint32(3, n, true);
    long4.fill(0x11, 7, 7 + n);
    long4[7 + n] = 0x2e;
    const started = Date.now();
    expect(typeof unpickle(long4, opts).value).toBe('bigint');
    expect(Date.now() - started).toBeLessThan(2000);
    const text = Uint8Array.from([0x80, 2, 0x49, ...Buffer.from('9'.repeat(5000)), 0x0a, 0x2e]);
    expect(() => unpickle(text, opts)).toThrow(/integer literal of 5000 digits \(Python refuses more than 4300\)/);
  });
});

function u32(v: number): number[] {
  return [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24];
}

describe('legacy format size claims', () => {
  /** A legacy checkpoint with one FloatStorage '0' of `numel` elements (as the pickle says), stored as `stored`. */
  function legacy(numel: number, stored: bigint, data: Uint8Array, legacyView: [string, number, number] | null = null, keys = ['0']): string {
    const head = [
      new PickleWriter().proto(2).long1(0x1950a86a20f9469cfc6cn).stop().bytes(),
      new PickleWriter().proto(2).int(1001).stop().bytes(),
      new PickleWriter().proto(2).emptyDict().stop().bytes(),
    ];
    const w = new PickleWriter().proto(2).global('collections', 'OrderedDict').emptyTuple().reduce().mark();
    w.tensorItem('w', { cls: 'FloatStorage', key: '0', numel, offset: 0, size: [2], stride: [1], legacyView });
    w.setitems().stop();
    const k = new PickleWriter().proto(2).emptyList().mark();
    for (const key of keys) k.str(key);
    k.appends().stop();
    const count = Buffer.alloc(8);
    count.writeBigInt64LE(stored);
    const sections = keys.map(() => Buffer.concat([count, data]));
    return save(Buffer.concat([...head, w.bytes(), k.bytes(), ...sections]));
  }

  it('reads a well-formed file (control)', async () => {
    expect(Array.from((await readPytorchCheckpoint(legacy(4, 4n, f32(4)))).get('w')!.data)).toEqual([0, 1]);
  });

  it('an element count that disagrees with the pickle, or is negative or huge, is refused', async () => {
    expect((await readError(legacy(4, 3n, f32(4)))).message).toMatch(/storage '0' has 3 elements in the file but 4 in the pickle/);
    expect((await readError(legacy(4, -1n, f32(4)))).message).toMatch(/has -1 elements in the file/);
    expect((await readError(legacy(4, 2n ** 62n, f32(4)))).message).toMatch(/has 4611686018427387904 elements in the file/);
  });

  it('a storage listed twice, and a view outside its storage, are refused', async () => {
    expect((await readError(legacy(4, 4n, f32(4), null, ['0', '0']))).message).toMatch(/storage '0' is listed twice/);
    expect((await readError(legacy(4, 4n, f32(4), ['0v', 3, 4]))).message).toMatch(/storage '0': view \[3, 7\) lies outside the storage's 4 elements/);
  });

  it('a tensor cannot read past its legacy view window', async () => {
    // View [2, 3) of a 4-element storage: a size-2 tensor in it would read element 3.
    expect((await readError(legacy(4, 4n, f32(4), ['0v', 2, 1]))).message).toMatch(/tensor 'w': .* has 2 elements but its storage '0' holds 1/);
  });
});

// ---- property-based fuzzing over a real checkpoint ---------------------------------------

const ORIGINAL = readFileSync(fixture('mamba-ssm-tiny/pytorch_model.bin'));
const SEED = 20240611;

function sameData(a: Float32Array | Int32Array, b: Float32Array | Int32Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i] && !(Number.isNaN(a[i]) && Number.isNaN(b[i]))) return false;
  return true;
}

describe('fuzzing mamba-ssm-tiny/pytorch_model.bin', async () => {
  const reference = await readPytorchCheckpoint(fixture('mamba-ssm-tiny/pytorch_model.bin'));
  const pklName = 'pytorch_model/data.pkl';
  // The fixture's entries, through the central directory (torch's local headers defer sizes to
  // data descriptors); entries are stored uncompressed.
  const entries: Array<[string, Uint8Array]> = [];
  const eocd = ORIGINAL.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  for (let i = 0, at = ORIGINAL.readUInt32LE(eocd + 16); i < ORIGINAL.readUInt16LE(eocd + 10); i++) {
    const size = ORIGINAL.readUInt32LE(at + 20);
    const nameLen = ORIGINAL.readUInt16LE(at + 28);
    const local = ORIGINAL.readUInt32LE(at + 42);
    const start = local + 30 + ORIGINAL.readUInt16LE(local + 26) + ORIGINAL.readUInt16LE(local + 28);
    entries.push([ORIGINAL.subarray(at + 46, at + 46 + nameLen).toString('utf8'), ORIGINAL.subarray(start, start + size)]);
    at += 46 + nameLen + ORIGINAL.readUInt16LE(at + 30) + ORIGINAL.readUInt16LE(at + 32);
  }
  const PICKLE = entries[0]![1];

  /** Read `bytes` as a checkpoint: a clean Error naming the file, or (returns 'ok') a TensorMap. */
  async function outcome(bytes: Uint8Array, mustEqualOriginal: boolean): Promise<'ok' | 'error'> {
    const path = save(bytes);
    let result;
    try {
      result = await readPytorchCheckpoint(path);
    } catch (err) {
      expect(err).toBeInstanceOf(Error);
      expect([Error, UnsafePickleError], (err as Error).stack).toContain((err as Error).constructor);
      expect((err as Error).message).toContain(path);
      return 'error';
    }
    if (mustEqualOriginal) {
      expect([...result.keys()]).toEqual([...reference.keys()]);
      for (const [name, t] of result) {
        expect(t.shape, name).toEqual(reference.get(name)!.shape);
        expect(sameData(t.data, reference.get(name)!.data), name).toBe(true);
      }
    } else {
      for (const [name, t] of result) expect(t.data.length, name).toBe(t.shape.reduce((a, b) => a * b, 1));
    }
    return 'ok';
  }

  it('the fixture pickle is where the test thinks it is', () => {
    expect(entries[0]![0]).toBe(pklName);
    expect(entries.length).toBeGreaterThan(20);
    expect(PICKLE[0]).toBe(0x80);
    expect(PICKLE[PICKLE.length - 1]).toBe(0x2e);
  });

  it('random byte flips anywhere: a clean Error, or exactly the original tensors (the CRC-32 catches data changes)', async () => {
    const seen = { ok: 0, error: 0 };
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(fc.nat(ORIGINAL.length - 1), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 3 }), async (flips) => {
        const bytes = Uint8Array.from(ORIGINAL);
        for (const [at, x] of flips) bytes[at] ^= x;
        seen[await outcome(bytes, true)]++;
      }),
      { numRuns: 150, seed: SEED },
    );
    expect(seen.error).toBeGreaterThan(0);
  });

  it('truncations are always an error', async () => {
    await fc.assert(
      fc.asyncProperty(fc.nat(ORIGINAL.length - 1), async (cut) => {
        expect(await outcome(ORIGINAL.subarray(0, cut), true)).toBe('error');
      }),
      { numRuns: 60, seed: SEED },
    );
  });

  it('pickle mutations re-zipped with valid CRCs: a clean Error or well-formed tensors, never a crash', async () => {
    const seen = { ok: 0, error: 0 };
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.record({ kind: fc.constant('flip' as const), flips: fc.array(fc.tuple(fc.nat(PICKLE.length - 1), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 3 }) }),
          fc.record({ kind: fc.constant('cut' as const), at: fc.nat(PICKLE.length - 1) }),
          fc.record({ kind: fc.constant('insert' as const), at: fc.nat(PICKLE.length - 1), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
        ),
        async (m) => {
          let pkl: Uint8Array = Uint8Array.from(PICKLE);
          if (m.kind === 'flip') for (const [i, x] of m.flips) pkl[i] ^= x;
          else if (m.kind === 'cut') pkl = pkl.subarray(0, m.at);
          else pkl = Buffer.concat([pkl.subarray(0, m.at), m.bytes, pkl.subarray(m.at)]);
          const zip = writeStoredZip(entries.map(([n, b]) => [n, n === pklName ? pkl : b]));
          seen[await outcome(zip, false)]++;
        },
      ),
      { numRuns: 250, seed: SEED },
    );
    expect(seen.error).toBeGreaterThan(0);
    expect(seen.ok).toBeGreaterThan(0);
  });
});
