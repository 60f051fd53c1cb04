/**
 * `src/loaders/save.ts` for browser bundles (mapped by the bundler, see docs/browser.md): saving
 * writes a folder, which a page cannot do.
 */
import type { TransformerModel } from '../models/transformer.js';

export type { SaveOptions, SaveFormat } from '../loaders/save.js';

/** Always throws: there is no folder to write to in a browser. */
export async function saveModel(model: TransformerModel, dir: string): Promise<never> {
  throw new Error(`model.save('${dir}') writes a folder, which needs Node; in the browser, serialise the weights with serializeSafetensors instead (model ${model.constructor.name})`);
}
