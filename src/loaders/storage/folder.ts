/** {@link ModelStorage} over a local folder (Node only). */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ModelStorage } from './storage.js';

/** The files of a model folder on this machine; a missing file reads as undefined. */
export function folderStorage(dir: string): ModelStorage {
  return {
    location: dir,
    async read(path) {
      try {
        return new Uint8Array(await readFile(join(dir, path)));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw new Error(`${join(dir, path)}: cannot be read (${(err as Error).message})`);
      }
    },
  };
}
