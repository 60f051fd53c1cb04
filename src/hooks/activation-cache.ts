import * as tf from '@tensorflow/tfjs-core';
import { nearestNames } from '../util/suggest.js';

/**
 * Activations captured by {@link runWithCache}, by hook point name. The cache owns the tensors:
 * they outlive the forward's tidy scopes until {@link ActivationCache.dispose} (or until the
 * caller {@link ActivationCache.take}s one over).
 */
export class ActivationCache {
  private readonly tensors = new Map<string, tf.Tensor>();
  private disposed = false;

  /** Names captured, in the order the forward reached them. */
  names(): string[] {
    return [...this.tensors.keys()];
  }

  /** Number of captured tensors. */
  get size(): number {
    return this.tensors.size;
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  /** The activation captured at `name`; still owned by the cache. */
  get(name: string): tf.Tensor {
    if (this.disposed) throw new Error(`activation cache was disposed; '${name}' is gone`);
    const found = this.tensors.get(name);
    if (found !== undefined) return found;
    const captured = this.names();
    if (captured.length === 0) throw new Error(`'${name}' was not captured: the cache is empty`);
    throw new Error(
      `'${name}' was not captured; nearest captured: ${nearestNames(name, captured).map((n) => `'${n}'`).join(', ')} ` +
        `(pass it in runWithCache's names to capture it)`,
    );
  }

  /** Remove `name` from the cache and hand its tensor to the caller, who must dispose it. */
  take(name: string): tf.Tensor {
    const tensor = this.get(name);
    this.tensors.delete(name);
    return tensor;
  }

  /** Captured tensors, in capture order (owned by the cache). */
  entries(): [string, tf.Tensor][] {
    return [...this.tensors.entries()];
  }

  /**
   * Record `tensor` under `name`; the cache takes ownership. A point that runs more than once in
   * one forward keeps its last value. Used by the capture hooks.
   */
  store(name: string, tensor: tf.Tensor): void {
    if (this.disposed) {
      tensor.dispose();
      throw new Error('activation cache was disposed');
    }
    this.tensors.get(name)?.dispose();
    this.tensors.delete(name); // keep the order of the latest capture
    this.tensors.set(name, tensor);
  }

  /** Free every captured tensor. Safe to call twice. */
  dispose(): void {
    tf.dispose([...this.tensors.values()]);
    this.tensors.clear();
    this.disposed = true;
  }
}
