// Hostile and corrupted safetensors files: every one is refused with an Error naming the file,
// tensor and problem before any data is decoded; nothing crashes, hangs or decodes wrong data.
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseSafetensors } from '../../src/index.js';
import { fixture } from '../helpers.js';

const SRC = 'hostile.safetensors';

/** A safetensors file from header text (taken verbatim) and data bytes. */
function file(header: string | object, data: Uint8Array | number = 0): Uint8Array {
  const text = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const body = typeof data === 'number' ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + text.length + body.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(text.length), true);
  out.set(text, 8);
  out.set(body, 8 + text.length);
  return out;
}

const f32 = (...v: number[]) => new Uint8Array(Float32Array.from(v).buffer);
const entry = (shape: unknown, begin: unknown, end: unknown, dtype: unknown = 'F32') => ({ dtype, shape, data_offsets: [begin, end] });

/** The Error a parse throws; fails the test if it does not throw or throws a non-Error class. */
function errorOf(bytes: Uint8Array): Error {
  let thrown: unknown;
  try {
    parseSafetensors(bytes, SRC);
  } catch (err) {
    thrown = err;
  }
  expect(thrown, 'expected the parse to fail').toBeInstanceOf(Error);
  // A clean Error of our own, never a TypeError/RangeError from reading garbage.
  expect((thrown as Error).constructor).toBe(Error);
  expect((thrown as Error).message).toContain(SRC);
  return thrown as Error;
}

describe('safetensors header validation', () => {
  it('a header that is null, an array or a number is refused, not a TypeError', () => {
    expect(errorOf(file('null')).message).toMatch(/header is null, not a JSON object/);
    expect(errorOf(file('[]')).message).toMatch(/header is an array, not a JSON object/);
    expect(errorOf(file('42')).message).toMatch(/header is a number/);
  });

  it('a null, array or string entry names the tensor', () => {
    expect(errorOf(file({ w: null })).message).toMatch(/tensor 'w': header entry is null, not an object/);
    expect(errorOf(file({ w: [1, 2] })).message).toMatch(/tensor 'w': header entry is an array/);
    expect(errorOf(file({ w: 'F32' })).message).toMatch(/tensor 'w': header entry is a string/);
  });

  it('dtype must be a known string', () => {
    expect(errorOf(file({ w: entry([1], 0, 4, 'F8_E4M3') }, 4)).message).toMatch(/tensor 'w' has unsupported dtype 'F8_E4M3'/);
    expect(errorOf(file({ w: entry([1], 0, 4, 7) }, 4)).message).toMatch(/tensor 'w': dtype is a number/);
    // Inherited object keys are not dtypes.
    expect(errorOf(file({ w: entry([1], 0, 4, 'constructor') }, 4)).message).toMatch(/unsupported dtype 'constructor'/);
  });

  it('shape must be an array of non-negative safe integers', () => {
    for (const shape of [[-1], [1.5], ['2'], [null], [2 ** 53], 3, null]) {
      expect(errorOf(file({ w: entry(shape, 0, 4) }, 4)).message).toMatch(/tensor 'w': shape .*(non-negative integers|not an array)/);
    }
  });

  it('data_offsets must be two non-negative safe integers with begin <= end inside the data', () => {
    const bad = (offsets: unknown) => errorOf(file({ w: { dtype: 'F32', shape: [1], data_offsets: offsets } }, 4)).message;
    expect(bad([0])).toMatch(/data_offsets \[0\] must be two non-negative integers/);
    expect(bad([0, 4, 8])).toMatch(/must be two/);
    expect(bad([-4, 0])).toMatch(/must be two/);
    expect(bad([0, 4.5])).toMatch(/must be two/);
    expect(bad([0, 2 ** 60])).toMatch(/must be two/);
    expect(bad('0,4')).toMatch(/must be two/);
    expect(bad([4, 0])).toMatch(/data_offsets \[4, 0\] end before they begin/);
    expect(bad([0, 8])).toMatch(/tensor 'w' data \[0, 8\) lies outside the 4 data bytes/);
  });

  it('the byte count must equal elements x width, with no overflow hiding behind a zero', () => {
    expect(errorOf(file({ w: entry([3], 0, 8) }, 8)).message).toMatch(/tensor 'w' has 8 bytes, but F32\[3\] needs 12/);
    expect(errorOf(file({ w: entry([2 ** 40, 2 ** 40, 0], 0, 0) })).message).toMatch(/tensor 'w' has 0 bytes, but .* needs more than 2\^53/);
  });

  it('a name given twice is refused, even spelled with escapes (JSON.parse would keep the last)', () => {
    const w1 = JSON.stringify(entry([1], 0, 4));
    const w2 = JSON.stringify(entry([1], 4, 8));
    expect(errorOf(file(`{"w":${w1},"w":${w2}}`, 8)).message).toMatch(/header names 'w' twice/);
    expect(errorOf(file(`{"w":${w1},"\\u0077":${w2}}`, 8)).message).toMatch(/header names 'w' twice/);
  });

  it('a key given twice inside an entry is refused (which shape would count?)', () => {
    const text = '{"w":{"dtype":"F32","shape":[1],"shape":[2],"data_offsets":[0,8]}}';
    expect(errorOf(file(text, 8)).message).toMatch(/entry 'w' has the key 'shape' twice/);
  });

  it('quotes, braces and commas inside strings do not confuse the duplicate check', () => {
    const meta = { note: '"w": {"a", "b"}, [", "w"', 'also "w"': 'x' };
    const t = parseSafetensors(file({ __metadata__: meta, w: entry([1], 0, 4), 'w,"v"': entry([1], 4, 8) }, f32(1, 2)), SRC);
    expect([...t.keys()]).toEqual(['w', 'w,"v"']);
    expect(Array.from(t.get('w,"v"')!.data)).toEqual([2]);
  });

  it('overlapping or aliased tensors are refused', () => {
    expect(errorOf(file({ a: entry([2], 0, 8), b: entry([2], 4, 12) }, 12)).message).toMatch(/tensor 'b' data \[4, 12\) overlaps tensor 'a'/);
    expect(errorOf(file({ a: entry([1], 0, 4), b: entry([1], 0, 4) }, 4)).message).toMatch(/overlaps tensor/);
  });

  it('gaps, a first tensor not at 0 and trailing bytes are refused', () => {
    expect(errorOf(file({ a: entry([1], 0, 4), b: entry([1], 8, 12) }, 12)).message).toMatch(/tensor 'b' data starts at 8, leaving bytes \[4, 8\) that belong to no tensor/);
    expect(errorOf(file({ a: entry([1], 4, 8) }, 8)).message).toMatch(/tensor 'a' data starts at 4, leaving bytes \[0, 4\)/);
    expect(errorOf(file({ a: entry([1], 0, 4) }, 12)).message).toMatch(/the tensors cover 4 of the 12 data bytes/);
    expect(errorOf(file({}, 4)).message).toMatch(/cover 0 of the 4 data bytes/);
  });

  it('the layout is checked in offset order, whatever the header order; empty tensors may share an offset', () => {
    const t = parseSafetensors(file({ b: entry([1], 4, 8), e1: entry([0], 0, 0), a: entry([1], 0, 4), e2: entry([2, 0], 8, 8) }, f32(3, 5)), SRC);
    expect([...t.keys()]).toEqual(['b', 'e1', 'a', 'e2']);
    expect(Array.from(t.get('a')!.data)).toEqual([3]);
    expect(Array.from(t.get('b')!.data)).toEqual([5]);
    expect(t.get('e2')!.shape).toEqual([2, 0]);
  });

  it('__metadata__ must map strings to strings (null counts as absent, as in the reference crate)', () => {
    expect(errorOf(file({ __metadata__: { format: 1 } })).message).toMatch(/__metadata__ 'format' is a number \(1\), not a string/);
    expect(errorOf(file({ __metadata__: ['pt'] })).message).toMatch(/__metadata__ is an array/);
    expect(errorOf(file({ __metadata__: 'pt' })).message).toMatch(/__metadata__ is a string/);
    expect(parseSafetensors(file({ __metadata__: null, w: entry([1], 0, 4) }, f32(7)), SRC).get('w')!.data[0]).toBe(7);
  });

  it('the header length is capped at 100 MB before anything is allocated', () => {
    const bytes = new Uint8Array(16);
    new DataView(bytes.buffer).setBigUint64(0, 100_000_001n, true);
    expect(errorOf(bytes).message).toMatch(/header length 100000001 exceeds the 100000000-byte limit/);
    new DataView(bytes.buffer).setBigUint64(0, 2n ** 64n - 1n, true);
    expect(errorOf(bytes).message).toMatch(/exceeds the 100000000-byte limit/);
  });

  it('a header that is not UTF-8 is refused', () => {
    const bytes = file('{"w":1}');
    bytes[10] = 0xff;
    expect(errorOf(bytes).message).toMatch(/header is not valid UTF-8/);
  });
});

// ---- property-based fuzzing over a real file -------------------------------------------------

const ORIGINAL = readFileSync(fixture('mamba-tiny/model.safetensors'));
const HEADER_LEN = Number(ORIGINAL.readBigUInt64LE(0));
const HEADER = JSON.parse(ORIGINAL.subarray(8, 8 + HEADER_LEN).toString('utf8')) as Record<string, any>;
const NAMES = Object.keys(HEADER).filter((k) => k !== '__metadata__');
const REFERENCE = parseSafetensors(ORIGINAL, SRC);

/**
 * An independent decode (F32 only, as the fixture is) of what a header says, used as the oracle
 * for mutated files that still load: the loader must return exactly these bytes.
 */
function oracle(bytes: Uint8Array): Map<string, { shape: number[]; data: Float32Array }> {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Record<string, any>;
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, t] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    expect(t.dtype).toBe('F32');
    const raw = buf.subarray(8 + n + t.data_offsets[0], 8 + n + t.data_offsets[1]);
    out.set(name, { shape: t.shape, data: new Float32Array(Uint8Array.from(raw).buffer) });
  }
  return out;
}

function sameFloats(a: Float32Array | Int32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i] && !(Number.isNaN(a[i]) && Number.isNaN(b[i]))) return false;
  return true;
}

/** The property every mutation must satisfy: a clean Error, or exactly what the header says. */
function check(bytes: Uint8Array, expectSameAsOriginal: boolean): 'ok' | 'error' {
  let result;
  try {
    result = parseSafetensors(bytes, SRC);
  } catch (err) {
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).constructor, (err as Error).message).toBe(Error);
    expect((err as Error).message).toContain(SRC);
    return 'error';
  }
  const want = oracle(bytes);
  expect([...result.keys()]).toEqual([...want.keys()]);
  for (const [name, t] of result) {
    expect(t.shape, name).toEqual(want.get(name)!.shape);
    expect(sameFloats(t.data, want.get(name)!.data), name).toBe(true);
  }
  if (expectSameAsOriginal) {
    expect([...result.keys()]).toEqual([...REFERENCE.keys()]);
    for (const [name, t] of result) expect(sameFloats(t.data, REFERENCE.get(name)!.data as Float32Array), name).toBe(true);
  }
  return 'ok';
}

/** Re-encode a header object (keeping the data section) with a correct length prefix. */
function withHeader(header: unknown, data = ORIGINAL.subarray(8 + HEADER_LEN)): Uint8Array {
  return file(typeof header === 'string' ? header : JSON.stringify(header), data);
}

const SEED = 20240611;

describe('fuzzing mamba-tiny/model.safetensors', () => {
  it('the unmodified file matches its oracle', () => {
    expect(check(ORIGINAL, true)).toBe('ok');
  });

  it('random byte flips: a clean Error, or (flips in data only) the flipped bytes read as written', () => {
    const outcomes = { ok: 0, error: 0 };
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(ORIGINAL.length - 1), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 4 }),
        fc.boolean(),
        (flips, headerOnly) => {
          const bytes = Uint8Array.from(ORIGINAL);
          for (const [at, x] of flips) bytes[headerOnly ? at % (8 + HEADER_LEN) : at] ^= x;
          outcomes[check(bytes, false)]++;
        },
      ),
      { numRuns: 300, seed: SEED },
    );
    // Both outcomes occur, so the property is not vacuous.
    expect(outcomes.ok).toBeGreaterThan(0);
    expect(outcomes.error).toBeGreaterThan(0);
  });

  it('truncation anywhere, or bytes appended, is always an error', () => {
    fc.assert(
      fc.property(fc.nat(ORIGINAL.length - 1), (cut) => {
        expect(check(ORIGINAL.subarray(0, cut), false)).toBe('error');
      }),
      { numRuns: 150, seed: SEED },
    );
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 64 }), (tail) => {
        expect(check(Buffer.concat([ORIGINAL, tail]), false)).toBe('error');
      }),
      { numRuns: 50, seed: SEED },
    );
  });

  it('random length prefixes are an error', () => {
    fc.assert(
      fc.property(fc.oneof(fc.bigInt({ min: 0n, max: BigInt(HEADER_LEN + 64) }), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n })), (len) => {
        fc.pre(len !== BigInt(HEADER_LEN));
        const bytes = Uint8Array.from(ORIGINAL);
        new DataView(bytes.buffer).setBigUint64(0, len, true);
        expect(check(bytes, false)).toBe('error');
      }),
      { numRuns: 100, seed: SEED },
    );
  });

  // Values a hostile header might put anywhere.
  const junk = fc.oneof(
    fc.integer({ min: -5, max: 300_000 }),
    fc.constantFrom(-1, 0, 1.5, 2 ** 31, 2 ** 53, 2 ** 64, Number.MAX_VALUE, '4', null, true, [], {}, [0], [0, 4, 8], 'F32', 'BF16', 'I64', 'F8_E5M2'),
  );

  it('edits of header fields: a clean Error, or exactly what the edited header says', () => {
    const outcomes = { ok: 0, error: 0 };
    fc.assert(
      fc.property(
        fc.constantFrom(...NAMES),
        fc.constantFrom(...NAMES),
        fc.constantFrom('dtype', 'shape', 'shapeDim', 'begin', 'end', 'shift', 'swap', 'delete', 'entry', 'add', 'metadata', 'dupKey'),
        junk,
        fc.integer({ min: -64, max: 64 }),
        (name, other, edit, value, delta) => {
          const h = structuredClone(HEADER);
          const t = h[name];
          let text: string | undefined;
          switch (edit) {
            case 'dtype': t.dtype = value; break;
            case 'shape': t.shape = value; break;
            case 'shapeDim': t.shape[Math.abs(delta) % Math.max(1, t.shape.length)] = value; break;
            case 'begin': t.data_offsets[0] = value; break;
            case 'end': t.data_offsets[1] = value; break;
            // Move one tensor's window by delta bytes (keeps its size).
            case 'shift': t.data_offsets = [t.data_offsets[0] + delta, t.data_offsets[1] + delta]; break;
            // Exchange two tensors' data windows: a valid file iff their sizes match.
            case 'swap': [t.data_offsets, h[other].data_offsets] = [h[other].data_offsets, t.data_offsets]; break;
            case 'delete': delete t[['dtype', 'shape', 'data_offsets'][Math.abs(delta) % 3]!]; break;
            case 'entry': h[name] = value; break;
            case 'add': h[`extra.${delta}`] = { dtype: 'F32', shape: [1], data_offsets: [Math.abs(delta) * 4, Math.abs(delta) * 4 + 4] }; break;
            case 'metadata': h.__metadata__ = value; break;
            case 'dupKey': {
              const json = JSON.stringify(h);
              text = json.slice(0, -1) + `,${JSON.stringify(name)}:${JSON.stringify(h[other])}}`;
              break;
            }
          }
          const outcome = check(withHeader(text ?? h), false);
          if (edit === 'dupKey') expect(outcome).toBe('error');
          if (edit === 'swap' && name !== other && outcome === 'ok') {
            // A swap that loads reads each tensor's new window: never the original data under a new name.
            const size = (n: string) => HEADER[n].data_offsets[1] - HEADER[n].data_offsets[0];
            expect(size(name)).toBe(size(other));
          }
          outcomes[outcome]++;
        },
      ),
      { numRuns: 400, seed: SEED },
    );
    expect(outcomes.ok).toBeGreaterThan(0);
    expect(outcomes.error).toBeGreaterThan(0);
  });

  it('edits that leave names, shapes and offsets alone load the original tensors', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.string()), fc.nat(16), (metadata, pad) => {
        const h = { __metadata__: metadata, ...Object.fromEntries(NAMES.map((n) => [n, HEADER[n]])) };
        expect(check(withHeader(JSON.stringify(h) + ' '.repeat(pad)), true)).toBe('ok');
      }),
      { numRuns: 100, seed: SEED },
    );
  });
});
