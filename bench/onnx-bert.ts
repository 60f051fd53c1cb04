/**
 * A Tessera BERT encoder as an ONNX model with the same weights, run through onnxruntime-node
 * (the engine under transformers.js), so the bench can compare the two engines on one
 * computation in one process (`bert_vs_onnxruntime`).
 *
 * Two graphs can be built:
 * - `fused` (the default, onnxruntime's best case): the com.microsoft contrib ops that
 *   onnxruntime's own BERT optimizer (onnxruntime.transformers.optimizer) writes: `Attention`
 *   (Q, K and V as one GEMM over a [H, 3H] weight, mask, scale, softmax and the context inside
 *   one kernel), `BiasGelu` after the up projection and `SkipLayerNormalization` (bias +
 *   residual + LayerNorm) after the output and down projections.
 * - plain opset 17: MatMul/Add, Reshape/Transpose, MatMul/Softmax with the additive mask, an Erf
 *   GELU and `LayerNormalization`; onnxruntime's level-'all' optimizer fuses parts of it itself.
 *
 * The serialiser is a minimal hand-written protobuf writer for the few ONNX messages needed: the
 * onnx package has no JS builder on the registry we trust, and protobufjs (installed transitively)
 * carries no ONNX schema, so a schema would have to be vendored anyway; the wire format of these
 * messages is small and fixed (onnx/onnx.proto, field numbers below).
 */
import * as tf from '@tensorflow/tfjs-core';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import type { Attention } from '../src/layers/attention.js';
import type { Block } from '../src/layers/block.js';
import type { FeedForward } from '../src/layers/feed-forward.js';
import type { LayerNorm } from '../src/layers/norm.js';
import type { EncoderModel } from '../src/models/encoder.js';

// ---- protobuf wire format -------------------------------------------------------------------

/** A message as a list of byte chunks (weights are not copied until the model is joined). */
class Msg {
  readonly parts: Uint8Array[] = [];
  length = 0;
  private push(bytes: Uint8Array): this {
    this.parts.push(bytes);
    this.length += bytes.length;
    return this;
  }
  private varint(value: bigint | number): this {
    // int64 fields: negative values are their 64-bit two's complement (ten bytes).
    let v = BigInt.asUintN(64, BigInt(value));
    const out: number[] = [];
    while (v >= 0x80n) {
      out.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    out.push(Number(v));
    return this.push(Uint8Array.from(out));
  }
  private tag(field: number, wire: number): this {
    return this.varint((field << 3) | wire);
  }
  int(field: number, value: number | bigint): this {
    return this.tag(field, 0).varint(value);
  }
  float(field: number, value: number): this {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, value, true);
    return this.tag(field, 5).push(b);
  }
  bytes(field: number, value: Uint8Array): this {
    return this.tag(field, 2).varint(value.length).push(value);
  }
  string(field: number, value: string): this {
    return this.bytes(field, new TextEncoder().encode(value));
  }
  msg(field: number, value: Msg): this {
    this.tag(field, 2).varint(value.length);
    for (const p of value.parts) this.push(p);
    return this;
  }
  join(): Uint8Array {
    const out = new Uint8Array(this.length);
    let at = 0;
    for (const p of this.parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }
}

// ---- ONNX messages (onnx.proto field numbers) -------------------------------------------------

const FLOAT = 1;
const INT32 = 6;
const INT64 = 7;

type Attr = number | number[] | string;
interface Attrs {
  [name: string]: { f: number } | Attr;
}

function attribute(name: string, value: { f: number } | Attr): Msg {
  const a = new Msg().string(1, name);
  if (typeof value === 'string') return a.bytes(4, new TextEncoder().encode(value)).int(20, 3);
  if (typeof value === 'number') return a.int(3, value).int(20, 2);
  if (Array.isArray(value)) {
    for (const v of value) a.int(8, v);
    return a.int(20, 7);
  }
  return a.float(2, value.f).int(20, 1);
}

/** Nodes and initializers of a graph under construction, with fresh value names. */
class Graph {
  readonly nodes: Msg[] = [];
  readonly initializers: Msg[] = [];
  private count = 0;

  node(op: string, inputs: string[], attrs: Attrs = {}, domain = '', outputs = 1): string[] {
    const names = Array.from({ length: outputs }, () => `v${this.count++}`);
    const n = new Msg();
    for (const i of inputs) n.string(1, i);
    for (const o of names) n.string(2, o);
    n.string(3, `${op}_${this.count}`).string(4, op);
    for (const [k, v] of Object.entries(attrs)) n.msg(5, attribute(k, v));
    if (domain !== '') n.string(7, domain);
    this.nodes.push(n);
    return names;
  }

  op(op: string, inputs: string[], attrs: Attrs = {}, domain = ''): string {
    return this.node(op, inputs, attrs, domain)[0]!;
  }

  tensor(dims: number[], data: Float32Array | Int32Array | BigInt64Array, name = `w${this.count++}`): string {
    const type = data instanceof Float32Array ? FLOAT : data instanceof Int32Array ? INT32 : INT64;
    const t = new Msg();
    for (const d of dims) t.int(1, d);
    t.int(2, type).string(8, name).bytes(9, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    this.initializers.push(t);
    return name;
  }

  ints(values: number[]): string {
    return this.tensor([values.length], BigInt64Array.from(values.map(BigInt)));
  }

  scalar(value: number): string {
    return this.tensor([], Float32Array.of(value));
  }
}

function valueInfo(name: string, elemType: number, dims: (number | string)[]): Msg {
  const shape = new Msg();
  for (const d of dims) shape.msg(1, typeof d === 'number' ? new Msg().int(1, d) : new Msg().string(2, d));
  const tensorType = new Msg().int(1, elemType).msg(2, shape);
  return new Msg().string(1, name).msg(2, new Msg().msg(1, tensorType));
}

// ---- BERT ----------------------------------------------------------------------------------

const data = (t: tf.Tensor): Float32Array => t.dataSync() as Float32Array;

/** `[out, in]` (PyTorch layout) as `[in, out]`, ONNX MatMul's right operand. */
function transposed(w: tf.Tensor): Float32Array {
  return tf.tidy(() => tf.transpose(w).dataSync() as Float32Array);
}

export interface OnnxBertOptions {
  /** com.microsoft fused ops (onnxruntime's best case, default) or plain opset 17. */
  fused?: boolean;
}

/**
 * The encoder's last hidden state as an ONNX model (opset 17, plus com.microsoft 1 when fused).
 * Inputs: `input_ids` and `token_type_ids` int64 [B, L], `attention_mask` int32 [B, L] (1 = keep);
 * output `last_hidden_state` float32 [B, L, H]. Weights are copied from `model` as they are now.
 */
export function buildOnnxBert(model: EncoderModel, options: OnnxBertOptions = {}): Uint8Array {
  const fused = options.fused ?? true;
  const g = new Graph();
  const emb = model.embeddings;
  if (emb.position === undefined || emb.tokenType === undefined || emb.norm === undefined) {
    throw new Error('buildOnnxBert: expected BERT embeddings (positions, token types and a LayerNorm)');
  }
  const [, hidden] = emb.word.weight.shape as [number, number];
  const embNorm = emb.norm as LayerNorm;

  // Embeddings: word + position (the table's first L rows) + token type, then LayerNorm.
  const word = g.op('Gather', [g.tensor(emb.word.weight.shape, data(emb.word.weight)), 'input_ids']);
  const length = g.op('Shape', ['input_ids'], { start: 1, end: 2 });
  const positions = g.op('Slice', [g.tensor(emb.position.weight.shape, data(emb.position.weight)), g.ints([0]), length, g.ints([0])]);
  const types = g.op('Gather', [g.tensor(emb.tokenType.weight.shape, data(emb.tokenType.weight)), 'token_type_ids']);
  const sum = g.op('Add', [g.op('Add', [word, positions]), types]);
  let x = g.op('LayerNormalization', [sum, g.tensor([hidden], data(embNorm.weight)), g.tensor([hidden], data(embNorm.bias))], {
    axis: -1,
    epsilon: { f: embNorm.eps },
  });

  // The plain graph's additive mask [B, 1, 1, L], made once: (1 - mask) · -1e9 as Tessera's.
  let maskBias = '';
  if (!fused) {
    const keep = g.op('Cast', ['attention_mask'], { to: FLOAT });
    const bias = g.op('Mul', [g.op('Sub', [g.scalar(1), keep]), g.scalar(-1e9)]);
    maskBias = g.op('Unsqueeze', [bias, g.ints([1, 2])]);
  }

  for (const layer of model.layers.items as Block[]) {
    const attn = layer.mixer as Attention;
    const ffn = layer.ffn as FeedForward;
    const [n1, n2] = [layer.mixerNorm as LayerNorm, layer.ffnNorm as LayerNorm];
    if (ffn.options.activation !== 'gelu') {
      throw new Error(`buildOnnxBert: the graph has the exact (erf) GELU only, the model uses '${ffn.options.activation}'`);
    }
    const { numHeads } = attn.options;
    const headDim = attn.headDim;
    const bias = (t: tf.Tensor | undefined, size: number): Float32Array => (t === undefined ? new Float32Array(size) : data(t));
    const norm = (n: LayerNorm) => [g.tensor([hidden], data(n.weight)), g.tensor([hidden], data(n.bias))];
    let attended: string;
    if (fused) {
      // [H, 3H]: the three projections side by side, as the Attention op takes them.
      const qkv = tf.tidy(() => tf.concat([attn.query.weight, attn.key.weight, attn.value.weight], 0).transpose().dataSync() as Float32Array);
      const qkvBias = new Float32Array(3 * hidden);
      qkvBias.set(bias(attn.query.bias, hidden), 0);
      qkvBias.set(bias(attn.key.bias, hidden), hidden);
      qkvBias.set(bias(attn.value.bias, hidden), 2 * hidden);
      attended = g.op('Attention', [x, g.tensor([hidden, 3 * hidden], qkv), g.tensor([3 * hidden], qkvBias), 'attention_mask'], { num_heads: numHeads, mask_filter_value: { f: -1e9 } }, 'com.microsoft');
    } else {
      const project = (l: Attention['query'], perm: number[]) => {
        const y = g.op('Add', [g.op('MatMul', [x, g.tensor([hidden, hidden], transposed(l.weight))]), g.tensor([hidden], bias(l.bias, hidden))]);
        return g.op('Transpose', [g.op('Reshape', [y, g.ints([0, 0, numHeads, headDim])])], { perm });
      };
      const q = project(attn.query, [0, 2, 1, 3]);
      const k = project(attn.key, [0, 2, 3, 1]);
      const v = project(attn.value, [0, 2, 1, 3]);
      const scores = g.op('Add', [g.op('Mul', [g.op('MatMul', [q, k]), g.scalar(1 / Math.sqrt(headDim))]), maskBias]);
      const context = g.op('MatMul', [g.op('Softmax', [scores], { axis: -1 }), v]);
      attended = g.op('Reshape', [g.op('Transpose', [context], { perm: [0, 2, 1, 3] }), g.ints([0, 0, hidden])]);
    }
    const out = g.op('MatMul', [attended, g.tensor([hidden, hidden], transposed(attn.output.weight))]);
    const outBias = g.tensor([hidden], bias(attn.output.bias, hidden));
    const inner = ffn.options.intermediateSize;
    if (fused) {
      x = g.node('SkipLayerNormalization', [out, x, ...norm(n1), outBias], { epsilon: { f: n1.eps } }, 'com.microsoft')[0]!;
      const up = g.op('MatMul', [x, g.tensor([hidden, inner], transposed(ffn.up.weight))]);
      const act = g.op('BiasGelu', [up, g.tensor([inner], bias(ffn.up.bias, inner))], {}, 'com.microsoft');
      const down = g.op('MatMul', [act, g.tensor([inner, hidden], transposed(ffn.down.weight))]);
      x = g.node('SkipLayerNormalization', [down, x, ...norm(n2), g.tensor([hidden], bias(ffn.down.bias, hidden))], { epsilon: { f: n2.eps } }, 'com.microsoft')[0]!;
    } else {
      const ln = (y: string, n: LayerNorm) => g.op('LayerNormalization', [y, ...norm(n)], { axis: -1, epsilon: { f: n.eps } });
      x = ln(g.op('Add', [g.op('Add', [out, outBias]), x]), n1);
      const up = g.op('Add', [g.op('MatMul', [x, g.tensor([hidden, inner], transposed(ffn.up.weight))]), g.tensor([inner], bias(ffn.up.bias, inner))]);
      // Exact (erf) GELU, BERT's `gelu`: x · (1 + erf(x / √2)) / 2.
      const erf = g.op('Erf', [g.op('Mul', [up, g.scalar(Math.SQRT1_2)])]);
      const act = g.op('Mul', [g.op('Mul', [up, g.op('Add', [erf, g.scalar(1)])]), g.scalar(0.5)]);
      const down = g.op('Add', [g.op('MatMul', [act, g.tensor([inner, hidden], transposed(ffn.down.weight))]), g.tensor([hidden], bias(ffn.down.bias, hidden))]);
      x = ln(g.op('Add', [down, x]), n2);
    }
  }
  const last = g.op('Identity', [x]);

  const graph = new Msg();
  for (const n of g.nodes) graph.msg(1, n);
  graph.string(2, 'tessera_bert');
  for (const t of g.initializers) graph.msg(5, t);
  graph.msg(11, valueInfo('input_ids', INT64, ['batch', 'length']));
  graph.msg(11, valueInfo('token_type_ids', INT64, ['batch', 'length']));
  graph.msg(11, valueInfo('attention_mask', INT32, ['batch', 'length']));
  // The output is the graph's last value, renamed through an Identity so its name is fixed.
  graph.msg(12, valueInfo(last, FLOAT, ['batch', 'length', hidden]));
  const proto = new Msg().int(1, 8).string(2, 'tessera').msg(7, graph).msg(8, new Msg().string(1, '').int(2, 17));
  if (fused) proto.msg(8, new Msg().string(1, 'com.microsoft').int(2, 1));
  return proto.join();
}

// ---- running it --------------------------------------------------------------------------

/** The subset of onnxruntime-node's API used here. */
export interface OrtTensor {
  readonly data: unknown;
  readonly dims: readonly number[];
}
export interface Ort {
  Tensor: new (type: string, data: unknown, dims: readonly number[]) => OrtTensor;
  InferenceSession: {
    create(model: Uint8Array, options: Record<string, unknown>): Promise<{
      inputNames: readonly string[];
      outputNames: readonly string[];
      run(feeds: Record<string, OrtTensor>): Promise<Record<string, OrtTensor>>;
      release(): Promise<void>;
    }>;
  };
}

/**
 * onnxruntime-node as @huggingface/transformers resolves it (the engine transformers.js runs on
 * Node), or `undefined` where it is not installed.
 */
export async function loadOnnxRuntime(): Promise<Ort | undefined> {
  const here = createRequire(import.meta.url);
  for (const from of ['@huggingface/transformers', undefined]) {
    try {
      const req = from === undefined ? here : createRequire(here.resolve(from));
      const mod = (await import(pathToFileURL(req.resolve('onnxruntime-node')).href)) as Ort & { default?: Ort };
      return mod.InferenceSession !== undefined ? mod : mod.default;
    } catch {
      // Not resolvable from there: try the next place.
    }
  }
  return undefined;
}

/** A session over {@link buildOnnxBert}'s model and a function encoding int ids [B, L] with it. */
export async function onnxBertSession(
  ort: Ort,
  model: EncoderModel,
  options: OnnxBertOptions & { threads?: number } = {},
): Promise<{
  encode(ids: number[][], mask?: number[][], tokenTypes?: number[][]): Promise<{ data: Float32Array; dims: readonly number[] }>;
  release(): Promise<void>;
}> {
  const bytes = buildOnnxBert(model, options);
  const session = await ort.InferenceSession.create(bytes, {
    intraOpNumThreads: options.threads ?? 2,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
  });
  const output = session.outputNames[0]!;
  return {
    async encode(ids, mask, tokenTypes) {
      const [b, l] = [ids.length, ids[0]!.length];
      const flat = (rows: number[][] | undefined, fill: number) => rows?.flat() ?? new Array<number>(b * l).fill(fill);
      const feeds = {
        input_ids: new ort.Tensor('int64', BigInt64Array.from(ids.flat().map(BigInt)), [b, l]),
        token_type_ids: new ort.Tensor('int64', BigInt64Array.from(flat(tokenTypes, 0).map(BigInt)), [b, l]),
        attention_mask: new ort.Tensor('int32', Int32Array.from(flat(mask, 1)), [b, l]),
      };
      const out = (await session.run(feeds))[output]!;
      return { data: out.data as Float32Array, dims: out.dims };
    },
    release: () => session.release(),
  };
}
