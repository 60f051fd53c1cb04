// One process of the cache race test: loads a model by name into a shared cache through the fake
// hub and prints the snapshot folder and the sha256 of each file it got, as one JSON line.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { snapshotModel } from '../../src/loaders/hub/index.js';

const [name, endpoint, cacheDir, ...files] = process.argv.slice(2);
const dir = await snapshotModel(name!, { endpoint, cacheDir, progress: false, retryDelayMs: 10 });
const hashes = Object.fromEntries(files.map((f) => [f, createHash('sha256').update(readFileSync(join(dir, f))).digest('hex')]));
process.stdout.write(`${JSON.stringify({ dir, hashes })}\n`);
