import type { Architecture } from '../architectures/architecture.js';
import { renameParameter } from '../architectures/rename.js';
import type { TransformerModel } from '../models/transformer.js';
import type { Checkpoint } from './checkpoint.js';

/** Where the masked-LM head lives in Tessera's module tree (see `MaskedLM`). */
const HEAD = 'maskedLmHead.';

/**
 * Fail plainly when a checkpoint loaded as a masked LM holds no masked-LM head at all (a base
 * model's folder, e.g. a `BertModel`): the error names the head's weights as the file would
 * (HF names where the architecture declares them) rather than only listing Tessera paths.
 */
export function requireMaskedLmHead(model: TransformerModel, checkpoint: Checkpoint, architecture: Architecture<unknown>): void {
  const hasHead = [...checkpoint.tensors.keys()].some((name) => renameParameter(name, architecture.hfNames)?.startsWith(HEAD) === true);
  if (hasHead) return;
  const toHf = architecture.hfExport?.names.toHf(true);
  const wanted = model
    .namedParameters()
    .map(([path]) => path)
    .filter((path) => path.startsWith(HEAD))
    .map((path) => (toHf === undefined ? path : (renameParameter(path, toHf) ?? path)));
  const declared = Array.isArray(checkpoint.config.architectures) ? ` (its config.json declares ${checkpoint.config.architectures.join(', ')})` : '';
  throw new Error(
    `cannot load ${checkpoint.dir} as a masked LM: it has no masked-LM head weights${declared}; missing ${wanted.map((n) => `'${n}'`).join(', ')}. ` +
      'Load a *ForMaskedLM checkpoint, or this folder with AutoEncoder for hidden states only',
  );
}
