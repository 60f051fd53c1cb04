import { describe, expect, it, beforeAll } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readPytorchCheckpoint, UnsafePickleError } from '../../src/loaders/pytorch/index.js';
import { unpickle } from '../../src/loaders/pytorch/pickle.js';
import { resolveTorchGlobal } from '../../src/loaders/pytorch/torch-globals.js';
import { f16ToF32 as halfToFloat } from '../../src/loaders/dtypes.js';
import { readSafetensorsF32 } from '../helpers/read-safetensors.js';
import { PickleWriter } from '../helpers/pickle-writer.js';
import { writeStoredZip } from '../helpers/write-zip.js';

const FIX = join(import.meta.dirname, '..', 'fixtures');
const tmp = mkdtempSync(join(tmpdir(), 'tessera-bin-'));

function f32bytes(values: number[]): Uint8Array {
  return new Uint8Array(Float32Array.from(values).buffer);
}

describe('zip-format torch checkpoint (mamba-ssm-tiny)', () => {
  it('matches every tensor of mamba-tiny/model.safetensors, lm_head sharing the embedding storage', async () => {
    const bin = await readPytorchCheckpoint(join(FIX, 'mamba-ssm-tiny/pytorch_model.bin'));
    const ref = readSafetensorsF32(join(FIX, 'mamba-tiny/model.safetensors'));
    expect(bin.size).toBe(23);
    expect([...bin.keys()][0]).toBe('backbone.embedding.weight');
    let compared = 0;
    for (const [name, t] of bin) {
      const refName = name === 'lm_head.weight' ? 'backbone.embeddings.weight' : name.replace('backbone.embedding.', 'backbone.embeddings.');
      const r = ref.get(refName);
      expect(r, `missing ${refName}`).toBeDefined();
      expect(t.shape, name).toEqual(r!.shape);
      expect(t.dtype).toBe('float32');
      expect(t.sourceDtype).toBe('F32');
      expect(t.data, name).toEqual(r!.data);
      compared++;
    }
    expect(compared).toBe(23);
    // Shared storage is copied per tensor, not aliased.
    expect(bin.get('lm_head.weight')!.data).not.toBe(bin.get('backbone.embedding.weight')!.data);
  });

  it('gives a clear error for a truncated zip', async () => {
    const full = readFileSync(join(FIX, 'mamba-ssm-tiny/pytorch_model.bin'));
    const p = join(tmp, 'truncated.bin');
    writeFileSync(p, full.subarray(0, Math.floor(full.length / 2)));
    await expect(readPytorchCheckpoint(p)).rejects.toThrow(/truncated\.bin: not a readable PyTorch zip checkpoint.*truncated or corrupt/);
  });

  it('rejects a file that is neither zip nor pickle', async () => {
    const p = join(tmp, 'garbage.bin');
    writeFileSync(p, Buffer.from('hello world'));
    await expect(readPytorchCheckpoint(p)).rejects.toThrow(/garbage\.bin: not a PyTorch checkpoint/);
  });
});

describe('restricted unpickler', () => {
  it('refuses GLOBAL os.system + REDUCE in a zip checkpoint and never calls it', async () => {
    const evil = new PickleWriter().proto(2).global('os', 'system').mark().str('touch /tmp/pwned').tuple().reduce().stop().bytes();
    const p = join(tmp, 'evil.bin');
    writeFileSync(p, writeStoredZip([['archive/data.pkl', evil], ['archive/version', Buffer.from('3\n')]]));
    const err = await readPytorchCheckpoint(p).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnsafePickleError);
    expect((err as Error).message).toMatch(/refusing to load global 'os\.system'/);
    expect((err as Error).message).toContain('archive/data.pkl');
  });

  it('refuses STACK_GLOBAL builtins.eval (protocol 4)', () => {
    const w = new PickleWriter().proto(4);
    w.op(0x8c, 8, ...Buffer.from('builtins')).op(0x8c, 4, ...Buffer.from('eval')).op(0x93);
    w.str('1+1').op(0x85).reduce().stop();
    expect(() => unpickle(w.bytes(), { resolveGlobal: resolveTorchGlobal })).toThrow(/'builtins\.eval'/);
  });

  it('refuses REDUCE on a non-callable, BUILD on a tensor, NEWOBJ and INST', () => {
    const opts = { resolveGlobal: resolveTorchGlobal };
    const reduceStr = new PickleWriter().proto(2).str('x').emptyTuple().reduce().stop().bytes();
    expect(() => unpickle(reduceStr, opts)).toThrow(/REDUCE on a string/);
    const newobj = new PickleWriter().proto(2).global('collections', 'OrderedDict').emptyTuple().op(0x81).stop().bytes();
    expect(() => unpickle(newobj, opts)).toThrow(/refusing opcode NEWOBJ/);
    const inst = new PickleWriter().proto(2).mark().op(0x69, ...Buffer.from('subprocess\nPopen\n')).stop().bytes();
    expect(() => unpickle(inst, opts)).toThrow(/refusing INST of subprocess\.Popen/);
    const buildDict = new PickleWriter().proto(2).emptyDict().emptyDict().op(0x62).stop().bytes();
    expect(() => unpickle(buildDict, opts)).toThrow(/BUILD on a dict is not allowed/);
    const unsupportedStorage = new PickleWriter().proto(2).global('torch', 'BoolStorage').stop().bytes();
    expect(() => unpickle(unsupportedStorage, opts)).toThrow(/unsupported storage type torch\.BoolStorage/);
  });

  it('reports a truncated pickle and one without STOP', () => {
    const full = new PickleWriter().proto(2).str('backbone.embedding.weight').stop().bytes();
    expect(() => unpickle(full.subarray(0, 10), { resolveGlobal: resolveTorchGlobal, source: 'x/data.pkl' })).toThrow(/x\/data\.pkl: truncated/);
    expect(() => unpickle(full.subarray(0, full.length - 1), { resolveGlobal: resolveTorchGlobal })).toThrow(/truncated/);
  });

  it('reads plain protocol-2 data (ints, big ints, floats, nested containers)', () => {
    const w = new PickleWriter().proto(2).mark().int(7).int(300).int(-5).long1(0x1950a86a20f9469cfc6cn);
    w.op(0x47, ...Buffer.from([0x3f, 0xf8, 0, 0, 0, 0, 0, 0])); // 1.5 as BINFLOAT
    w.emptyList().mark().int(1).int(2).appends().op(0x6c).stop(); // LIST closes the outer MARK
    const { value } = unpickle(w.bytes(), { resolveGlobal: resolveTorchGlobal });
    expect(value).toEqual([7, 300, -5, 0x1950a86a20f9469cfc6cn, 1.5, [1, 2]]);
  });
});

describe('legacy (non-zip) torch checkpoint', () => {
  let path: string;
  beforeAll(() => {
    // Storage '0': float32 [0..5]; tensors: a [2,3] contiguous view, its transpose (strides
    // [1,3], non-contiguous) and a view at offset 2 through legacy view metadata.
    // Storage '1': float16 [1, -2, 0.5]; '2': int64; '3': bfloat16.
    const w = new PickleWriter();
    const header = [
      new PickleWriter().proto(2).long1(0x1950a86a20f9469cfc6cn).stop().bytes(),
      new PickleWriter().proto(2).int(1001).stop().bytes(),
      new PickleWriter().proto(2).emptyDict().mark().str('protocol_version').int(1001).str('little_endian').bool(true).setitems().stop().bytes(),
    ];
    w.proto(2).global('collections', 'OrderedDict').emptyTuple().reduce().mark();
    w.tensorItem('a', { cls: 'FloatStorage', key: '0', numel: 6, offset: 0, size: [2, 3], stride: [3, 1], legacyView: null });
    w.tensorItem('a_t', { cls: 'FloatStorage', key: '0', numel: 6, offset: 0, size: [3, 2], stride: [1, 3], legacyView: null });
    w.tensorItem('view', { cls: 'FloatStorage', key: '0', numel: 6, offset: 1, size: [2], stride: [1], legacyView: ['0_view', 2, 4] });
    w.tensorItem('half', { cls: 'HalfStorage', key: '1', numel: 3, offset: 0, size: [3], stride: [1], legacyView: null });
    w.tensorItem('long', { cls: 'LongStorage', key: '2', numel: 2, offset: 0, size: [2], stride: [1], legacyView: null });
    w.tensorItem('bf16', { cls: 'BFloat16Storage', key: '3', numel: 2, offset: 0, size: [1, 2], stride: [2, 1], legacyView: null });
    w.setitems().stop();
    const keys = new PickleWriter().proto(2).emptyList().mark().str('0').str('1').str('2').str('3').appends().stop().bytes();
    const numel = (n: number) => {
      const b = Buffer.alloc(8);
      b.writeBigInt64LE(BigInt(n));
      return b;
    };
    const half = Buffer.alloc(6);
    half.writeUInt16LE(0x3c00, 0); // 1
    half.writeUInt16LE(0xc000, 2); // -2
    half.writeUInt16LE(0x3800, 4); // 0.5
    const long = Buffer.alloc(16);
    long.writeBigInt64LE(123456n, 0);
    long.writeBigInt64LE(-7n, 8);
    const bf = Buffer.alloc(4);
    bf.writeUInt16LE(0x3fc0, 0); // 1.5
    bf.writeUInt16LE(0xc0a0, 2); // -5
    path = join(tmp, 'legacy.pt');
    writeFileSync(path, Buffer.concat([...header, w.bytes(), keys, numel(6), f32bytes([0, 1, 2, 3, 4, 5]), numel(3), half, numel(2), long, numel(2), bf]));
  });

  it('reads storages, offsets, strides, views and dtypes', async () => {
    const m = await readPytorchCheckpoint(path);
    expect([...m.keys()]).toEqual(['a', 'a_t', 'view', 'half', 'long', 'bf16']);
    expect(Array.from(m.get('a')!.data)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(m.get('a_t')!.shape).toEqual([3, 2]);
    expect(Array.from(m.get('a_t')!.data)).toEqual([0, 3, 1, 4, 2, 5]);
    expect(Array.from(m.get('view')!.data)).toEqual([3, 4]);
    expect(Array.from(m.get('half')!.data)).toEqual([1, -2, 0.5]);
    expect(m.get('half')!.sourceDtype).toBe('F16');
    expect(m.get('long')!.dtype).toBe('int32');
    expect(m.get('long')!.data).toBeInstanceOf(Int32Array);
    expect(Array.from(m.get('long')!.data)).toEqual([123456, -7]);
    expect(Array.from(m.get('bf16')!.data)).toEqual([1.5, -5]);
  });

  it('refuses int64 values outside int32, naming the tensor', async () => {
    const buf = readFileSync(path);
    // Patch the first int64 (123456) to 2^40.
    const at = buf.indexOf(Buffer.from([0x40, 0xe2, 0x01, 0, 0, 0, 0, 0]));
    expect(at).toBeGreaterThan(0);
    const p = join(tmp, 'big-int.pt');
    const copy = Buffer.from(buf);
    copy.writeBigInt64LE(1n << 40n, at);
    writeFileSync(p, copy);
    await expect(readPytorchCheckpoint(p)).rejects.toThrow(/tensor 'long': int64 value 1099511627776 .* does not fit in int32/);
  });

  it('reports a truncated storage section', async () => {
    const buf = readFileSync(path);
    const p = join(tmp, 'legacy-trunc.pt');
    writeFileSync(p, buf.subarray(0, buf.length - 3));
    await expect(readPytorchCheckpoint(p)).rejects.toThrow(/legacy-trunc\.pt: truncated inside storage '3'/);
  });
});

describe('halfToFloat', () => {
  it('decodes subnormals, infinities and NaN', () => {
    expect(halfToFloat(0x0001)).toBe(2 ** -24);
    expect(halfToFloat(0x7c00)).toBe(Infinity);
    expect(halfToFloat(0xfc00)).toBe(-Infinity);
    expect(halfToFloat(0x7e00)).toBeNaN();
    expect(halfToFloat(0x7bff)).toBe(65504);
  });
});
