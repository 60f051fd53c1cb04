import { access, readFile } from 'node:fs/promises';
import { isAbsolute, join, resolve, sep } from 'node:path';
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

/**
 * Read a sharded checkpoint: `{ weight_map: { tensor: file } }` and each file it names. Every
 * file name must be a plain relative path inside `dir` (see {@link checkShardName}), and a tensor
 * found in two shards is an error rather than one silently replacing the other.
 */
async function readShards(dir: string, indexPath: string, readFile1: (path: string) => Promise<TensorMap>): Promise<TensorMap> {
  let weightMap: unknown;
  try {
    weightMap = (JSON.parse(await readFile(indexPath, 'utf8')) as { weight_map?: unknown } | null)?.weight_map;
  } catch (err) {
    throw new Error(`${indexPath} is not a valid shard index (${(err as Error).message})`);
  }
  if (weightMap === null || typeof weightMap !== 'object' || Array.isArray(weightMap)) {
    throw new Error(`${indexPath} has no weight_map object (tensor name -> shard file)`);
  }
  const map = weightMap as Record<string, unknown>;
  for (const [name, file] of Object.entries(map)) {
    if (typeof file !== 'string') throw new Error(`${indexPath}: weight_map entry for tensor '${name}' is ${file === null ? 'null' : typeof file}, not a shard file name`);
    checkShardName(dir, indexPath, file);
  }
  const tensors: TensorMap = new Map();
  const shardOf = new Map<string, string>();
  for (const file of new Set(Object.values(map) as string[])) {
    const path = join(dir, file);
    if (!(await exists(path))) throw new Error(`shard '${file}' listed in ${indexPath} is missing`);
    for (const [name, t] of await readFile1(path)) {
      const other = shardOf.get(name);
      if (other !== undefined) throw new Error(`tensor '${name}' is in two shards listed in ${indexPath}: '${other}' and '${file}'`);
      shardOf.set(name, file);
      tensors.set(name, t);
    }
  }
  for (const name of Object.keys(map)) {
    if (!tensors.has(name)) throw new Error(`tensor '${name}' is listed in ${indexPath} but not found in its shard '${map[name] as string}'`);
  }
  return tensors;
}

/**
 * A shard name from an index must name a file inside the model folder: relative, no `..`
 * segment, no backslash or NUL, and still under `dir` once resolved. The check is lexical on
 * purpose: in the Hugging Face cache every snapshot file is a symlink into `../../blobs`, so the
 * real path of a legitimate shard is outside the folder; what must not happen is an index
 * steering the reader to a file the folder does not list (`../../other-model/...`, `/etc/...`).
 */
function checkShardName(dir: string, indexPath: string, file: string): void {
  const bad = (why: string): never => {
    throw new Error(`${indexPath}: shard '${file}' ${why}; a shard index may only name files inside the model folder`);
  };
  if (file === '') bad('is an empty name');
  if (file.includes('\\')) bad('contains a backslash');
  if (file.includes('\0')) bad('contains a NUL byte');
  if (isAbsolute(file) || /^[A-Za-z]:/.test(file)) bad('is an absolute path');
  if (file.split('/').some((seg) => seg === '..')) bad("has a '..' segment");
  const root = resolve(dir);
  const target = resolve(root, file);
  if (target === root || !target.startsWith(root.endsWith(sep) ? root : root + sep)) bad('resolves outside the model folder');
}

/** Read a model folder: config and weights. */
export async function readCheckpointDir(dir: string): Promise<Checkpoint> {
  const config = await readConfig(dir);
  const tensors = await readWeights(dir);
  return { dir, config, tensors };
}
