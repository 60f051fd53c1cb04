import { copyFile, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { AutoCausalLM, AutoEncoder, disposeOutput, parseSafetensors, readSafetensors, serializeSafetensors, writeSafetensors, type TensorToSave } from '../../src/index.js';
import { fixture, ids, loadExpected, maxAbsDiff } from '../helpers.js';

/**
 * Reference roundings written independently of src/loaders/dtypes.ts: the nearest representable
 * value found by search over the target format's values, ties to the even bit pattern.
 */
const HALF_VALUES: { value: number; bits: number }[] = (() => {
  const out: { value: number; bits: number }[] = [];
  for (let bits = 0; bits < 0x7c00; bits++) {
    const e = bits >> 10;
    const f = bits & 0x3ff;
    out.push({ value: e === 0 ? f * 2 ** -24 : (1 + f / 1024) * 2 ** (e - 15), bits });
  }
  return out; // ascending, non-negative finite halves
})();

function roundToHalf(x: number): number {
  const a = Math.abs(x);
  let lo = 0;
  let hi = HALF_VALUES.length - 1;
  if (a >= 65520) return Math.sign(x) * Infinity;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (HALF_VALUES[mid]!.value <= a) lo = mid;
    else hi = mid;
  }
  const below = HALF_VALUES[lo]!;
  const above = HALF_VALUES[hi]!;
  const pick = a - below.value < above.value - a ? below : a - below.value > above.value - a ? above : below.bits % 2 === 0 ? below : above;
  return Math.sign(x) * pick.value || 0;
}

function roundToBf16(x: number): number {
  // bfloat16 keeps 8 significant bits: candidates are x truncated to 8 bits and the next one up.
  if (x === 0) return 0;
  const e = Math.floor(Math.log2(Math.abs(x)));
  const ulp = 2 ** (e - 7);
  const down = Math.trunc(x / ulp) * ulp;
  const up = down + Math.sign(x) * ulp;
  const dDown = Math.abs(x - down);
  const dUp = Math.abs(up - x);
  if (dDown !== dUp) return Math.fround(dDown < dUp ? down : up);
  return Math.fround(Math.round(down / ulp) % 2 === 0 ? down : up); // tie: even last bit
}

async function writeCopy(src: string, dtype: 'F16' | 'BF16' | 'F32', shards = 1): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `tessera-${dtype}-`));
  for (const f of ['config.json']) await copyFile(join(src, f), join(dir, f));
  const tensors = await readSafetensors(join(src, 'model.safetensors'));
  const entries: [string, TensorToSave][] = [...tensors].map(([name, t]) => [name, { shape: t.shape, data: t.data, dtype }]);
  if (shards === 1) {
    await writeSafetensors(join(dir, 'model.safetensors'), new Map(entries));
    return dir;
  }
  const weightMap: Record<string, string> = {};
  const per = Math.ceil(entries.length / shards);
  for (let s = 0; s < shards; s++) {
    const file = `model-${String(s + 1).padStart(5, '0')}-of-${String(shards).padStart(5, '0')}.safetensors`;
    const part = entries.slice(s * per, (s + 1) * per);
    for (const [name] of part) weightMap[name] = file;
    await writeSafetensors(join(dir, file), new Map(part));
  }
  await writeFile(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap }));
  return dir;
}

describe('half-precision and sharded checkpoints', () => {
  const dirs: Record<string, string> = {};
  beforeAll(async () => {
    dirs.f16 = await writeCopy(fixture('llama-tiny'), 'F16');
    dirs.bf16 = await writeCopy(fixture('llama-tiny'), 'BF16');
    dirs.shards = await writeCopy(fixture('llama-tiny'), 'F32', 2);
    dirs.bertBf16 = await writeCopy(fixture('bert-tiny'), 'BF16');
  });

  for (const [key, round] of [
    ['f16', roundToHalf],
    ['bf16', roundToBf16],
  ] as const) {
    it(`${key}: every weight equals the float32 weight rounded to ${key}, tensor by tensor`, async () => {
      const original = await readSafetensors(fixture('llama-tiny/model.safetensors'));
      const loaded = await readSafetensors(join(dirs[key]!, 'model.safetensors'));
      expect([...loaded.keys()].sort()).toEqual([...original.keys()].sort());
      for (const [name, t] of original) {
        const got = loaded.get(name)!;
        expect(got.sourceDtype).toBe(key.toUpperCase());
        let mismatches = 0;
        t.data.forEach((v, i) => {
          if (got.data[i] !== round(v)) mismatches++;
        });
        expect(mismatches, name).toBe(0);
      }
    });
  }

  it('bf16 rounding is round-to-nearest-even on exact ties', () => {
    // 1 + 2^-8 lies exactly between bf16 neighbours 1 and 1 + 2^-7; the even one is 1.
    const tie = 1 + 2 ** -8;
    const bytes = (dtype: 'BF16' | 'F16', v: number) =>
      parseSafetensors(writeBytes(new Map([['x', { shape: [1], data: new Float32Array([v]), dtype }]]))).get('x')!.data[0];
    expect(bytes('BF16', tie)).toBe(1);
    expect(bytes('BF16', 1 + 3 * 2 ** -8)).toBe(1 + 2 ** -6); // odd neighbour below -> rounds up
    expect(bytes('F16', 1 + 2 ** -11)).toBe(1); // half tie, even below
  });

  for (const [key, tol] of [
    ['f16', 1e-2],
    // bf16 keeps 8 significant bits (relative rounding 2^-9 per weight): measured 0.042 here.
    ['bf16', 5e-2],
    ['shards', 1e-4],
  ] as const) {
    it(`${key}: llama-tiny logits stay close to expected.json`, async () => {
      const expected = loadExpected('llama-tiny');
      const model = await AutoCausalLM.fromDir(dirs[key]!);
      const out = model.forward(ids(expected.input_ids));
      const diff = maxAbsDiff(out.logits, expected.logits);
      expect(diff).toBeLessThan(tol);
      disposeOutput(out);
      model.dispose();
    });
  }

  it('bf16 BERT hidden states stay within 3e-2 (measured 0.015)', async () => {
    const expected = loadExpected('bert-tiny');
    const model = await AutoEncoder.fromDir(dirs.bertBf16!);
    const out = model.forward(ids(expected.input_ids), { attentionMask: ids(expected.attention_mask!), tokenTypeIds: ids(expected.token_type_ids!) });
    expect(maxAbsDiff(out.lastHiddenState, expected.last_hidden_state, expected.attention_mask)).toBeLessThan(3e-2);
    disposeOutput(out);
    model.dispose();
  });

});

function writeBytes(tensors: Map<string, TensorToSave>): Uint8Array {
  return serializeSafetensors(tensors);
}

describe('corrupt safetensors files are refused with a clear message', () => {
  it('a truncated file', async () => {
    const bytes = await readFile(fixture('llama-tiny/model.safetensors'));
    expect(() => parseSafetensors(bytes.subarray(0, bytes.length - 100), 'cut.safetensors')).toThrow(
      /cut\.safetensors: tensor '.*' data \[\d+, \d+\) lies outside the \d+ data bytes; the file is truncated or corrupt/,
    );
  });
  it('a header length pointing past the end', () => {
    const bytes = new Uint8Array(16);
    new DataView(bytes.buffer).setBigUint64(0, 1000n, true);
    expect(() => parseSafetensors(bytes, 'bad.safetensors')).toThrow(/bad\.safetensors: header length 1000 points past the end of the file \(16 bytes\)/);
  });
  it('a file shorter than the header length field', () => {
    expect(() => parseSafetensors(new Uint8Array(3), 'tiny.safetensors')).toThrow(/too short/);
  });
  it('a header that is not JSON', () => {
    const text = new TextEncoder().encode('{not json');
    const bytes = new Uint8Array(8 + text.length);
    new DataView(bytes.buffer).setBigUint64(0, BigInt(text.length), true);
    bytes.set(text, 8);
    expect(() => parseSafetensors(bytes, 'x.safetensors')).toThrow(/x\.safetensors: header is not valid JSON/);
  });
  it('a byte count that does not match dtype and shape', () => {
    const header = new TextEncoder().encode(JSON.stringify({ w: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }));
    const bytes = new Uint8Array(8 + header.length + 8);
    new DataView(bytes.buffer).setBigUint64(0, BigInt(header.length), true);
    bytes.set(header, 8);
    expect(() => parseSafetensors(bytes, 'x.safetensors')).toThrow(/tensor 'w' has 8 bytes, but F32\[3\] needs 12/);
  });

  it('an int64 value outside int32 is an error naming the file, then the tensor', () => {
    const header = new TextEncoder().encode(JSON.stringify({ ids: { dtype: 'I64', shape: [1], data_offsets: [0, 8] } }));
    const bytes = new Uint8Array(8 + header.length + 8);
    const view = new DataView(bytes.buffer);
    view.setBigUint64(0, BigInt(header.length), true);
    bytes.set(header, 8);
    view.setBigInt64(8 + header.length, 2n ** 40n, true);
    expect(() => parseSafetensors(bytes, 'x.safetensors')).toThrow(/^x\.safetensors: tensor 'ids': int64 value 1099511627776 at element 0 does not fit in int32/);
  });
});
