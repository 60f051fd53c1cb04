import { access, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TensorMap } from './raw-tensor.js';
import { readSafetensors } from './safetensors.js';
import { readPytorchCheckpoint } from './pytorch/index.js';

/** A checkpoint folder's contents: its parsed config.json and every tensor by file name. */
export interface Checkpoint {
  dir: string;
  config: Record<string, unknown>;
  tensors: TensorMap;
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

/** Read and parse `<dir>/config.json`. */
export async function readConfig(dir: string): Promise<Record<string, unknown>> {
  const path = join(dir, 'config.json');
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    throw new Error(`no config.json in '${dir}': is this a Hugging Face model folder?`);
  }
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch (err) {
    throw new Error(`${path} is not valid JSON (${(err as Error).message})`);
  }
}

/**
 * Read the weights of a model folder: `model.safetensors`, or the shards a
 * `model.safetensors.index.json` lists; for repos that have no safetensors, `pytorch_model.bin`
 * or the shards of `pytorch_model.bin.index.json` (read by the restricted pickle reader).
 */
export async function readWeights(dir: string): Promise<TensorMap> {
  const single = join(dir, 'model.safetensors');
  if (await exists(single)) return readSafetensors(single);
  const index = join(dir, 'model.safetensors.index.json');
  if (await exists(index)) return readShards(dir, index, readSafetensors);
  const bin = join(dir, 'pytorch_model.bin');
  if (await exists(bin)) return readPytorchCheckpoint(bin);
  const binIndex = join(dir, 'pytorch_model.bin.index.json');
  if (await exists(binIndex)) return readShards(dir, binIndex, readPytorchCheckpoint);
  throw new Error(
    `no weights in '${dir}': expected model.safetensors, model.safetensors.index.json, pytorch_model.bin or pytorch_model.bin.index.json`,
  );
}

/** Read a sharded checkpoint: `{ weight_map: { tensor: file } }` and each file it names. */
async function readShards(dir: string, indexPath: string, readFile1: (path: string) => Promise<TensorMap>): Promise<TensorMap> {
  let weightMap: Record<string, string>;
  try {
    weightMap = (JSON.parse(await readFile(indexPath, 'utf8')) as { weight_map: Record<string, string> }).weight_map;
  } catch (err) {
    throw new Error(`${indexPath} is not a valid shard index (${(err as Error).message})`);
  }
  if (weightMap === undefined || typeof weightMap !== 'object') throw new Error(`${indexPath} has no weight_map`);
  const tensors: TensorMap = new Map();
  for (const file of new Set(Object.values(weightMap))) {
    const path = join(dir, file);
    if (!(await exists(path))) throw new Error(`shard '${file}' listed in ${indexPath} is missing`);
    for (const [name, t] of await readFile1(path)) tensors.set(name, t);
  }
  for (const name of Object.keys(weightMap)) {
    if (!tensors.has(name)) throw new Error(`tensor '${name}' is listed in ${indexPath} but not found in its shard '${weightMap[name]}'`);
  }
  return tensors;
}

/** Read a model folder: config and weights. */
export async function readCheckpointDir(dir: string): Promise<Checkpoint> {
  const config = await readConfig(dir);
  const tensors = await readWeights(dir);
  return { dir, config, tensors };
}
