import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { HYBRID_MODEL_TYPE } from '../architectures/hybrid/config.js';
import { describeModel } from '../architectures/hybrid/describe.js';
import type { TransformerModel } from '../models/transformer.js';
import { writeSafetensors, type TensorToSave } from './safetensors.js';

/**
 * Save any Tessera model as a Tessera checkpoint: `config.json` is its {@link describeModel}
 * hybrid config with `model_type: "tessera-hybrid"` (plus `source_architecture`, for information),
 * and `model.safetensors` holds every parameter in float32 under its Tessera path. Reloading with
 * `AutoCausalLM.fromDir(dir)` (or AutoEncoder/AutoDecoder) rebuilds the same blocks, so the
 * outputs are bit-identical. A model loaded from HF is saved the same way; the result is a
 * Tessera checkpoint, not an HF one.
 */
export async function saveModel(model: TransformerModel, dir: string): Promise<void> {
  model.assertNotDisposed('save');
  const config = { model_type: HYBRID_MODEL_TYPE, source_architecture: model.architecture, ...describeModel(model) };
  const tensors = new Map<string, TensorToSave>();
  for (const [name, p] of model.namedParameters()) {
    tensors.set(name, { shape: p.shape, data: p.dataSync() as Float32Array });
  }
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
  await writeSafetensors(join(dir, 'model.safetensors'), tensors, { format: 'tessera' });
}
