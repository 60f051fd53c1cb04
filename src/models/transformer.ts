import * as tf from '@tensorflow/tfjs-core';
import type { Block } from '../layers/block.js';
import { createContext, releaseContext, type ForwardContext, type LayerStateStore } from '../layers/context.js';
import type { Embeddings } from '../layers/embeddings.js';
import { Linear } from '../layers/linear.js';
import { Layer, Module, ModuleList } from '../layers/module.js';
import type { Pooler } from '../layers/pooler.js';
import { checkKeys, type KeyList } from '../util/options.js';
import { IdOutOfRangeError, ModelDisposedError } from './errors.js';
import { isModelStateStore } from './state-store.js';

/** The parts an architecture chooses; the model classes only wire them. */
export interface ModelParts {
  embeddings: Embeddings;
  layers: Block[];
  /** Norm after the last layer (pre-norm decoders); BERT has none. */
  finalNorm?: Layer;
  /** Encoders: the pooler over the first token. */
  pooler?: Pooler;
  /** Causal LMs: the vocabulary projection, or 'tied' to reuse the token embedding matrix. */
  lmHead?: Linear | 'tied';
  /** Masked LMs: the head from hidden states to vocabulary logits (BERT's `cls.predictions`). */
  maskedLmHead?: Layer;
}

/** Options of a forward call. Tensors stay the caller's. */
export interface ForwardOptions {
  /** [B, L] (or [B, cached + L] with a cache), 1 = token, 0 = padding. */
  attentionMask?: tf.Tensor2D;
  /** [B, L] segment ids (BERT). */
  tokenTypeIds?: tf.Tensor2D;
  /** [B, L] explicit positions (e.g. for left-padded batches). */
  positionIds?: tf.Tensor2D;
  /** Incremental-decoding state; positions continue from `offset`. */
  cache?: LayerStateStore;
  offset?: number;
}

/** The keys of {@link ForwardOptions}; forward rejects any other, naming the nearest. */
export const FORWARD_OPTION_KEYS = {
  attentionMask: true, tokenTypeIds: true, positionIds: true, cache: true, offset: true,
} as const satisfies KeyList<ForwardOptions>;

/** Hidden states of a forward call; the caller owns the tensors. */
export interface HiddenOutput {
  /** Embedding output, then the output of each layer: N + 1 tensors [B, L, H]. */
  allOutputs: tf.Tensor3D[];
  /** The last layer's output after the final norm where the architecture has one. */
  lastHiddenState: tf.Tensor3D;
}

/**
 * The module tree shared by encoders, decoders and causal LMs: embeddings, a stack of blocks and
 * an optional final norm. Hook points are the module paths: `embeddings`, `layers.3`,
 * `layers.3.mixer`, `layers.3.ffn`, `finalNorm`, ...
 */
export class TransformerModel<Config = unknown> extends Module {
  readonly embeddings: Embeddings;
  readonly layers: ModuleList<Block>;
  readonly finalNorm?: Layer;
  private disposed = false;

  constructor(
    parts: ModelParts,
    /** The parsed architecture config this model was built from. */
    readonly config: Config,
    /** The registered architecture name (`bert`, `llama`, `mamba`, ...). */
    readonly architecture: string,
  ) {
    super();
    this.embeddings = this.addModule('embeddings', parts.embeddings);
    this.layers = this.addModule('layers', new ModuleList(parts.layers));
    if (parts.finalNorm !== undefined) this.finalNorm = this.addModule('finalNorm', parts.finalNorm);
    this.namedModules(); // fix every module's path for hooks and messages
  }

  /** The model in words for messages: its class and architecture (`CausalLM 'mamba'`). */
  get label(): string {
    return `${this.constructor.name} '${this.architecture}'`;
  }

  /** Whether {@link dispose} has run. */
  get isDisposed(): boolean {
    return this.disposed;
  }

  /**
   * Throw {@link ModelDisposedError} naming `method` if the model was disposed. Every public
   * method calls it first, so a disposed model fails with that error rather than deep in tfjs.
   */
  assertNotDisposed(method: string): void {
    if (this.disposed) throw new ModelDisposedError(this.label, method);
  }

  /** Free every parameter; later use throws {@link ModelDisposedError}. Calling it again does nothing. */
  override dispose(): void {
    if (this.disposed) return;
    super.dispose();
    this.disposed = true;
  }

  /** Every parameter with its dotted path (what saving and weight copies read); not after dispose. */
  override namedParameters(prefix = ''): [string, tf.Variable][] {
    this.assertNotDisposed('namedParameters');
    return super.namedParameters(prefix);
  }

  /**
   * Validate options and ids and build the per-call context. Shapes and dtypes are checked first;
   * then the ids are read once (a small copy, [B, L] integers) to check they index their tables.
   */
  protected context(inputIds: tf.Tensor, options: ForwardOptions, method = 'forward'): ForwardContext {
    this.assertNotDisposed(method);
    checkKeys(options, FORWARD_OPTION_KEYS, `${method} options`);
    if (inputIds.rank !== 2) throw new Error(`inputIds must be [batch, length], got shape [${inputIds.shape}]`);
    if (inputIds.dtype !== 'int32') throw new Error(`inputIds must be int32, got ${inputIds.dtype}`);
    const [batch, length] = inputIds.shape as [number, number];
    // Refused here, before any kernel, so every backend says the same: an empty batch or sequence
    // has no hidden states and no logits to sample from.
    if (batch === 0 || length === 0) {
      throw new Error(`inputIds has shape [${inputIds.shape}]: ${method} needs at least one sequence of at least one token`);
    }
    const offset = options.offset ?? 0;
    for (const [name, t, width] of [
      ['tokenTypeIds', options.tokenTypeIds, length],
      ['positionIds', options.positionIds, length],
      ['attentionMask', options.attentionMask, offset + length],
    ] as const) {
      if (t !== undefined && (t.shape[0] !== batch || t.shape[1] !== width)) {
        throw new Error(`${name} has shape [${t.shape}], expected [${batch}, ${width}]`);
      }
    }
    // Ids index tables (embeddings, rotary angles): a float would be truncated or interpolated silently.
    for (const [name, t] of [['tokenTypeIds', options.tokenTypeIds], ['positionIds', options.positionIds]] as const) {
      if (t !== undefined && t.dtype !== 'int32') throw new Error(`${name} must be int32, got ${t.dtype} (e.g. tf.tensor2d(rows, undefined, 'int32'))`);
    }
    for (const [name, t, size, table] of [
      ['inputIds', inputIds, this.embeddings.word.count, 'vocabulary'],
      ['tokenTypeIds', options.tokenTypeIds, this.embeddings.tokenType?.count, 'token types'],
      ['positionIds', options.positionIds, this.embeddings.position?.count, 'learned positions'],
    ] as const) {
      if (t !== undefined && size !== undefined) checkIdRange(name, t, size, table);
    }
    if (options.cache !== undefined && isModelStateStore(options.cache)) options.cache.claim(this, this.label);
    return createContext({
      attentionMask: options.attentionMask,
      tokenTypeIds: options.tokenTypeIds,
      positionIds: options.positionIds,
      cache: options.cache,
      offset,
    });
  }

  /** Run embeddings and blocks; call inside a tidy scope. */
  protected runStack(inputIds: tf.Tensor, ctx: ForwardContext): HiddenOutput {
    const allOutputs: tf.Tensor3D[] = [this.embeddings.call(inputIds, ctx) as tf.Tensor3D];
    for (const layer of this.layers.items) allOutputs.push(layer.call(allOutputs[allOutputs.length - 1]!, ctx) as tf.Tensor3D);
    const last = allOutputs[allOutputs.length - 1]!;
    const lastHiddenState = (this.finalNorm !== undefined ? this.finalNorm.call(last, ctx) : last) as tf.Tensor3D;
    return { allOutputs, lastHiddenState };
  }

  /**
   * Run `fn` in a tidy scope with a fresh context: the tensors of the object it returns survive,
   * intermediates and per-call memos do not.
   */
  protected withContext<T extends object>(
    inputIds: tf.Tensor,
    options: ForwardOptions,
    fn: (ctx: ForwardContext) => T,
    method = 'forward',
  ): T {
    const ctx = this.context(inputIds, options, method);
    try {
      return tf.tidy(() => fn(ctx) as unknown as tf.TensorContainer) as unknown as T;
    } finally {
      releaseContext(ctx);
    }
  }

  /** Hidden states for `inputIds` (int32 [B, L]). */
  forwardHidden(inputIds: tf.Tensor2D, options: ForwardOptions = {}): HiddenOutput {
    return this.withContext(inputIds, options, (ctx) => this.runStack(inputIds, ctx), 'forwardHidden');
  }
}

/**
 * Input id tensors that Tessera built from ids it already checked against the model's vocabulary
 * (generation's own steps): {@link checkIdRange} does not read them back.
 */
const checkedInputIds = new WeakSet<tf.Tensor>();

/**
 * Mark `ids` as made from token ids already checked to be in the vocabulary of the model they go
 * to, so a forward does not read them back to check again (a sync read per decode step).
 * @internal
 */
export function markInputIdsChecked(ids: tf.Tensor): void {
  checkedInputIds.add(ids);
}

/**
 * Throw {@link IdOutOfRangeError} for the first id of `ids` ([B, L] int32) outside 0..size-1.
 * Checked here rather than left to the embedding lookup: tfjs names only GatherV2 and the index
 * on cpu and wasm, and GPU backends read zeros for such ids without an error.
 */
function checkIdRange(name: string, ids: tf.Tensor, size: number, table: string): void {
  if (name === 'inputIds' && checkedInputIds.has(ids)) return;
  const values = ids.dataSync();
  const length = ids.shape[1]!;
  for (let i = 0; i < values.length; i++) {
    const id = values[i]!;
    if (id < 0 || id >= size) throw new IdOutOfRangeError(name, Math.floor(i / length), i % length, id, size, table);
  }
}

/** Dispose every tensor in a model output. */
export function disposeOutput(output: object): void {
  tf.dispose(Object.values(output).flat().filter((v): v is tf.Tensor => v instanceof tf.Tensor));
}
