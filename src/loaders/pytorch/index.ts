/**
 * PyTorch `.bin`/`.pt` checkpoints (torch.save of a state_dict) read without Python: the zip
 * container and the legacy one, through a pickle interpreter that only rebuilds tensors.
 */
import { open } from 'node:fs/promises';
import type { TensorMap } from '../raw-tensor.js';
import { readTorchZip } from './zip-format.js';
import { readTorchLegacy } from './legacy-format.js';

export { UnsafePickleError } from './pickle.js';

/**
 * Read a PyTorch checkpoint written by `torch.save(model.state_dict(), path)`, in either the zip
 * format (torch >= 1.6) or the legacy one. Floats become float32 (half/bfloat16/double upcast or
 * rounded), int64 becomes int32 (an error if a value does not fit). Only tensors, storages and
 * OrderedDicts are accepted: a pickle that names any other Python global is refused with an
 * {@link UnsafePickleError}, and nothing in it is executed.
 */
export async function readPytorchCheckpoint(path: string): Promise<TensorMap> {
  const head = Buffer.alloc(4);
  const fh = await open(path, 'r');
  let n: number;
  try {
    n = (await fh.read(head, 0, 4, 0)).bytesRead;
  } finally {
    await fh.close();
  }
  if (n >= 4 && head.readUInt32LE(0) === 0x04034b50) return readTorchZip(path);
  if (n >= 1 && head[0] === 0x80) return readTorchLegacy(path);
  throw new Error(
    `${path}: not a PyTorch checkpoint (neither a zip archive nor a pickle; ${n === 0 ? 'the file is empty' : `starts with 0x${head.subarray(0, n).toString('hex')}`})`,
  );
}
