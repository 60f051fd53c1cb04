import * as tf from '@tensorflow/tfjs-core';
import type { ModelStateStore } from '../models/state-store.js';
import { exactCopy } from '../ops/attention.js';
import { CacheModelMismatchError } from './errors.js';

/**
 * The model a cache (or snapshot) belongs to: a symbol standing for the instance, and how to name
 * it in errors. A symbol rather than the model itself: caches and snapshots must not keep a model
 * alive, and `tf.dispose(snapshot)` must not walk into the model's weights.
 */
export interface CacheOwner {
  readonly id: symbol;
  readonly label: string;
}

const modelIds = new WeakMap<object, symbol>();

function idOf(model: object): symbol {
  let id = modelIds.get(model);
  if (id === undefined) modelIds.set(model, (id = Symbol('model')));
  return id;
}

/** A copy of a cache's contents that outlives it: restore it into a cache to resume later. */
export interface CacheSnapshot {
  readonly slots: ReadonlyMap<object, Readonly<Record<string, tf.Tensor>>>;
  readonly length: number;
  readonly mask: readonly (readonly number[])[];
  readonly nextPosition: readonly number[];
  /** The model the cache belonged to when the snapshot was taken (undefined: not used yet). */
  readonly owner?: CacheOwner;
}

/**
 * The state of every mixer between generation steps, keyed by mixer instance, so it serves any
 * mix of mixers (attention KV caches `{key, value}` [B, kvHeads, S, headDim], Mamba states
 * `{conv [B, D, d_conv], ssm [B, D, N]}`, hybrids of both). On the native backend a KV cache's
 * tensors hold spare room past its S positions ([B, kvHeads, capacity, headDim], see
 * `keyValueLength` in ops/attention), so a decode step appends in place; {@link snapshot} and
 * {@link clone} give them exactly [B, kvHeads, S, headDim].
 *
 * Ownership: the cache keeps (`tf.keep`) whatever a mixer stores, even inside a tidy scope, and
 * disposes the tensors a new `set` replaces; {@link dispose} frees the rest. Besides tensors it
 * tracks, per row, which cached positions are real tokens (`mask`, 1) or padding (0) and the
 * position the next token takes, so left-padded batches and resumed streams line up.
 *
 * A cache belongs to the first model that runs with it (its clones and snapshots too); using it
 * with another model throws {@link CacheModelMismatchError} rather than continuing another
 * model's positions and states.
 */
export class GenerationCache implements ModelStateStore {
  private slots = new Map<object, Record<string, tf.Tensor>>();
  /** Positions held (the `offset` of the next forward call). */
  length = 0;
  /** [B][length]: 1 for a real token, 0 for padding. */
  mask: number[][] = [];
  /** [B]: the position id of each row's next token. */
  nextPosition: number[] = [];
  private disposed = false;
  private owner?: CacheOwner;
  /** While a step is open ({@link begin}): each changed slot's state before the step. */
  private before?: Map<object, Record<string, tf.Tensor> | undefined>;

  get(owner: object): Record<string, tf.Tensor> | undefined {
    this.assertLive();
    return this.slots.get(owner);
  }

  set(owner: object, state: Record<string, tf.Tensor>): void {
    this.assertLive();
    const kept = new Set(Object.values(state));
    for (const t of kept) tf.keep(t);
    const old = this.slots.get(owner);
    // In an open step the state from before it is kept for a rollback; one stored within the
    // step is freed when replaced.
    if (this.before !== undefined && !this.before.has(owner)) this.before.set(owner, old);
    else if (old !== undefined) {
      const held = new Set(Object.values(this.before?.get(owner) ?? {}));
      for (const t of Object.values(old)) if (!kept.has(t) && !held.has(t)) t.dispose();
    }
    this.slots.set(owner, { ...state });
  }

  /**
   * Open a step: until {@link commit} or {@link rollback}, the states that {@link set} replaces
   * are kept, so a step that fails part-way (after some layers stored theirs) can be undone and
   * the cache is never left holding some layers' new states and others' old ones.
   * @internal
   */
  begin(): void {
    this.assertLive();
    this.before = new Map();
  }

  /** Close the step, freeing the states it replaced. @internal */
  commit(): void {
    const before = this.before;
    this.before = undefined;
    if (before === undefined) return;
    for (const [owner, old] of before) {
      if (old === undefined) continue;
      const now = new Set(Object.values(this.slots.get(owner) ?? {}));
      for (const t of Object.values(old)) if (!now.has(t)) t.dispose();
    }
  }

  /** Undo the step: every slot back to its state before {@link begin}; what it stored is freed. @internal */
  rollback(): void {
    const before = this.before;
    this.before = undefined;
    if (before === undefined || this.disposed) return;
    for (const [owner, old] of before) {
      const keep = new Set(Object.values(old ?? {}));
      for (const t of Object.values(this.slots.get(owner) ?? {})) if (!keep.has(t)) t.dispose();
      if (old === undefined) this.slots.delete(owner);
      else this.slots.set(owner, old);
    }
  }

  /**
   * Bind the cache to `model` on first use; throw {@link CacheModelMismatchError} if it already
   * belongs to another. The model classes call this for every forward with a cache.
   */
  claim(model: object, label: string): void {
    this.assertLive();
    const id = idOf(model);
    if (this.owner === undefined) this.owner = { id, label };
    else if (this.owner.id !== id) {
      throw new CacheModelMismatchError(this.owner.label, label === this.owner.label ? `another ${label} instance` : label);
    }
  }

  /** Number of rows (0 before the first forward). */
  get batchSize(): number {
    return this.mask.length;
  }

  /** Mixers holding state, in the order they first stored it. */
  owners(): object[] {
    return [...this.slots.keys()];
  }

  /** An independent deep copy (its own tensors): e.g. to branch one prompt into several continuations. */
  clone(): GenerationCache {
    this.assertLive();
    const copy = new GenerationCache();
    const snapshot = this.snapshot();
    copy.slots = new Map(snapshot.slots as Map<object, Record<string, tf.Tensor>>); // adopt its tensors
    copy.length = snapshot.length;
    copy.mask = snapshot.mask.map((r) => [...r]);
    copy.nextPosition = [...snapshot.nextPosition];
    copy.owner = this.owner;
    return copy;
  }

  /**
   * Copy the state out (new tensors owned by the snapshot; free them with {@link disposeSnapshot}).
   * For Mamba this is a few KB per layer whatever the length, so a stream can be parked cheaply.
   */
  snapshot(): CacheSnapshot {
    this.assertLive();
    const slots = new Map<object, Record<string, tf.Tensor>>();
    for (const [owner, state] of this.slots) {
      // Copies (exact, without a KV cache's spare room): the cache keeps appending into its buffers.
      slots.set(owner, Object.fromEntries(Object.entries(state).map(([k, t]) => [k, tf.keep(exactCopy(t))])));
    }
    return { slots, length: this.length, mask: this.mask.map((r) => [...r]), nextPosition: [...this.nextPosition], owner: this.owner };
  }

  /**
   * Replace the contents with a copy of `snapshot` (the snapshot stays valid and stays the
   * caller's). A snapshot of another model's cache is refused ({@link CacheModelMismatchError}).
   */
  restore(snapshot: CacheSnapshot): void {
    this.assertLive();
    const from = snapshot.owner;
    if (from !== undefined && this.owner !== undefined && from.id !== this.owner.id) {
      throw new CacheModelMismatchError(this.owner.label, `a snapshot of ${from.label}'s cache`);
    }
    this.clear();
    if (from !== undefined) this.owner = from;
    for (const [owner, state] of snapshot.slots) {
      this.slots.set(owner, Object.fromEntries(Object.entries(state).map(([k, t]) => [k, tf.keep(t.clone())])));
    }
    this.length = snapshot.length;
    this.mask = snapshot.mask.map((r) => [...r]);
    this.nextPosition = [...snapshot.nextPosition];
  }

  /** Drop all state (the cache stays usable, empty, and still belongs to its model). */
  clear(): void {
    this.commit();
    for (const state of this.slots.values()) tf.dispose(Object.values(state));
    this.slots.clear();
    this.length = 0;
    this.mask = [];
    this.nextPosition = [];
  }

  /** Free every tensor; the cache cannot be used afterwards. */
  dispose(): void {
    if (this.disposed) return;
    this.clear();
    this.disposed = true;
  }

  get isDisposed(): boolean {
    return this.disposed;
  }

  private assertLive(): void {
    if (this.disposed) throw new Error('this GenerationCache was disposed; create a new one or restore a snapshot into a live cache');
  }
}

/** Free the tensors of a snapshot. */
export function disposeSnapshot(snapshot: CacheSnapshot): void {
  for (const state of snapshot.slots.values()) tf.dispose(Object.values(state));
}
