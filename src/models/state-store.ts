import type { LayerStateStore } from '../layers/context.js';

/**
 * A {@link LayerStateStore} that belongs to one model (a `GenerationCache`): the model claims it
 * on every forward, and it refuses a second model rather than mixing two models' states.
 */
export interface ModelStateStore extends LayerStateStore {
  /** Bind the store to `model` on first use; throw if it already belongs to another. */
  claim(model: object, label: string): void;
}

/** Whether `store` is a {@link ModelStateStore} (a plain store is not claimed). */
export function isModelStateStore(store: LayerStateStore): store is ModelStateStore {
  return typeof (store as Partial<ModelStateStore>).claim === 'function';
}
