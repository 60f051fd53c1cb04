import type { TransformerModel } from '../models/transformer.js';

/** Where a model was loaded from: its folder and the raw `config.json` read there. */
export interface ModelSource {
  dir: string;
  config: Readonly<Record<string, unknown>>;
}

// Kept beside the models rather than on them: a model never knows about files.
const sources = new WeakMap<TransformerModel, ModelSource>();

/** Record the folder `model` was loaded from (the `Auto*` loaders call this). */
export function rememberSource(model: TransformerModel, source: ModelSource): void {
  sources.set(model, source);
}

/** The folder `model` was loaded from, if a loader recorded one. */
export function sourceOf(model: TransformerModel): ModelSource | undefined {
  return sources.get(model);
}
