// A tiny pickle *writer* for tests: builds the exact opcode sequences torch.save emits (and
// hostile ones), so tests do not need Python.
export class PickleWriter {
  private parts: number[] = [];
  private memo = 0;

  op(...bytes: number[]): this {
    this.parts.push(...bytes);
    return this;
  }
  proto(v = 2): this {
    return this.op(0x80, v);
  }
  global(module: string, name: string): this {
    return this.op(0x63, ...Buffer.from(`${module}\n${name}\n`, 'latin1'));
  }
  str(s: string): this {
    const b = Buffer.from(s, 'utf8');
    const len = Buffer.alloc(4);
    len.writeUInt32LE(b.length);
    return this.op(0x58, ...len, ...b);
  }
  int(v: number): this {
    if (v >= 0 && v < 256) return this.op(0x4b, v);
    if (v >= 0 && v < 65536) return this.op(0x4d, v & 0xff, v >> 8);
    const b = Buffer.alloc(4);
    b.writeInt32LE(v);
    return this.op(0x4a, ...b);
  }
  long1(v: bigint): this {
    const bytes: number[] = [];
    let x = v;
    while (x > 0n) {
      bytes.push(Number(x & 0xffn));
      x >>= 8n;
    }
    if (bytes.length === 0 || bytes[bytes.length - 1] & 0x80) bytes.push(0);
    return this.op(0x8a, bytes.length, ...bytes);
  }
  mark(): this {
    return this.op(0x28);
  }
  tuple(): this {
    return this.op(0x74);
  }
  emptyTuple(): this {
    return this.op(0x29);
  }
  emptyDict(): this {
    return this.op(0x7d);
  }
  emptyList(): this {
    return this.op(0x5d);
  }
  reduce(): this {
    return this.op(0x52);
  }
  put(): this {
    return this.op(0x71, this.memo++);
  }
  get(i: number): this {
    return this.op(0x68, i);
  }
  setitems(): this {
    return this.op(0x75);
  }
  appends(): this {
    return this.op(0x65);
  }
  binpersid(): this {
    return this.op(0x51);
  }
  bool(v: boolean): this {
    return this.op(v ? 0x88 : 0x89);
  }
  none(): this {
    return this.op(0x4e);
  }
  stop(): this {
    return this.op(0x2e);
  }
  bytes(): Uint8Array {
    return Uint8Array.from(this.parts);
  }
  /** A tuple of ints via MARK ... TUPLE. */
  ints(values: number[]): this {
    this.mark();
    for (const v of values) this.int(v);
    return this.tuple();
  }
  /**
   * `name: _rebuild_tensor_v2(('storage', torch.<cls>, key, 'cpu', numel[, view]), offset, size, stride, False, OrderedDict())`
   * (to be used between MARK and SETITEMS of a dict). `legacyView` adds the legacy format's
   * sixth pid element: null -> None, a triple -> (view_key, offset, size).
   */
  tensorItem(
    name: string,
    t: { cls: string; key: string; numel: number; offset: number; size: number[]; stride: number[]; legacyView?: [string, number, number] | null },
  ): this {
    this.str(name).global('torch._utils', '_rebuild_tensor_v2').mark();
    this.mark().str('storage').global('torch', t.cls).str(t.key).str('cpu').int(t.numel);
    if (t.legacyView === null) this.none();
    else if (t.legacyView !== undefined) this.mark().str(t.legacyView[0]).int(t.legacyView[1]).int(t.legacyView[2]).tuple();
    this.tuple().binpersid();
    this.int(t.offset).ints(t.size).ints(t.stride).bool(false).global('collections', 'OrderedDict').emptyTuple().reduce();
    return this.tuple().reduce();
  }
}

/**
 * A torch.save-style zip checkpoint (`<archive>/data.pkl` + one `data/<n>` entry per tensor) of
 * float32/int32/int64 tensors given as typed arrays, for loader tests.
 */
export function torchZipBytes(
  tensors: Array<[string, { shape: number[]; data: Float32Array | Int32Array | BigInt64Array }]>,
  writeZip: (entries: Array<[string, Uint8Array]>) => Uint8Array,
  archive = 'archive',
): Uint8Array {
  const w = new PickleWriter().proto(2).global('collections', 'OrderedDict').emptyTuple().reduce().mark();
  const entries: Array<[string, Uint8Array]> = [];
  tensors.forEach(([name, t], key) => {
    const cls = t.data instanceof Float32Array ? 'FloatStorage' : t.data instanceof Int32Array ? 'IntStorage' : 'LongStorage';
    const stride = t.shape.map((_, i) => t.shape.slice(i + 1).reduce((a, b) => a * b, 1));
    w.tensorItem(name, { cls, key: String(key), numel: t.data.length, offset: 0, size: t.shape, stride });
    entries.push([`${archive}/data/${key}`, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength)]);
  });
  w.setitems().stop();
  return writeZip([[`${archive}/data.pkl`, w.bytes()], ...entries, [`${archive}/version`, new TextEncoder().encode('3\n')]]);
}
