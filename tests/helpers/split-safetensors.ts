// Split a safetensors file into two shards plus a model.safetensors.index.json, as
// save_pretrained(max_shard_size=...) would, to test sharded downloads and loads.
export function splitSafetensors(buf: Buffer): Map<string, Buffer> {
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const names = Object.keys(header).filter((k) => k !== '__metadata__');
  const halves = [names.slice(0, Math.ceil(names.length / 2)), names.slice(Math.ceil(names.length / 2))];
  const out = new Map<string, Buffer>();
  const weightMap: Record<string, string> = {};
  halves.forEach((group, i) => {
    const file = `model-0000${i + 1}-of-00002.safetensors`;
    const h: Record<string, unknown> = { __metadata__: { format: 'pt' } };
    const parts: Buffer[] = [];
    let off = 0;
    for (const name of group) {
      const t = header[name];
      const data = buf.subarray(8 + n + t.data_offsets[0], 8 + n + t.data_offsets[1]);
      h[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [off, off + data.length] };
      parts.push(data);
      off += data.length;
      weightMap[name] = file;
    }
    let json = JSON.stringify(h);
    json += ' '.repeat((8 - (json.length % 8)) % 8);
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(json.length));
    out.set(file, Buffer.concat([len, Buffer.from(json), ...parts]));
  });
  out.set('model.safetensors.index.json', Buffer.from(JSON.stringify({ metadata: { total_size: buf.length }, weight_map: weightMap }, null, 2)));
  return out;
}
