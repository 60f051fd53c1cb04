/**
 * Which files of a model repo Tessera needs, so a load fetches those and nothing else (no
 * README, ONNX exports, TF/Flax weights, or duplicate .bin next to safetensors).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { validateRepoPath } from './names.js';

/** Weight layouts in order of preference: safetensors first, PyTorch pickles only as a fallback. */
export const WEIGHT_CANDIDATES = [
  'model.safetensors',
  'model.safetensors.index.json',
  'pytorch_model.bin',
  'pytorch_model.bin.index.json',
] as const;

/** Tokenizer files any of the tokenizer classes may read; each is optional. */
export const TOKENIZER_FILES = [
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'added_tokens.json',
  'vocab.txt',
  'vocab.json',
  'merges.txt',
  'tokenizer.model',
  'spiece.model',
  'sentencepiece.bpe.model',
] as const;

/** What to fetch. */
export interface FileWants {
  weights: boolean;
  tokenizer: boolean;
}

/** The weights file (or index) to use among the repo's files, or undefined when none loads. */
export function pickWeights(files: ReadonlySet<string>): string | undefined {
  return WEIGHT_CANDIDATES.find((f) => files.has(f));
}

/**
 * Shard file names listed by a `*.index.json` (its `weight_map` values), deduplicated; each must
 * be a repo-relative path that stays inside the snapshot, checked before any request or read.
 */
export function shardsOf(indexJson: string, indexName: string): string[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(indexJson);
  } catch (err) {
    throw new Error(`${indexName}: not valid JSON (${(err as Error).message})`);
  }
  const map = (parsed as { weight_map?: unknown }).weight_map;
  if (typeof map !== 'object' || map === null) throw new Error(`${indexName}: has no "weight_map" object`);
  const shards = new Set<string>();
  for (const [tensor, file] of Object.entries(map as Record<string, unknown>)) {
    if (typeof file !== 'string') throw new Error(`${indexName}: tensor '${tensor}' maps to ${JSON.stringify(file)}, not a file name`);
    validateRepoPath(file, `${indexName} (shard of tensor '${tensor}')`);
    shards.add(file);
  }
  return [...shards];
}

/**
 * Which wanted files a local snapshot folder lacks, for deciding whether it can be used without
 * asking the hub. For a tokenizer-only load one of the main tokenizer files must be there.
 * @returns human-readable descriptions of what is missing (empty = usable).
 */
export async function missingFromSnapshot(dir: string, wants: FileWants, exists: (p: string) => Promise<boolean>): Promise<string[]> {
  const missing: string[] = [];
  if (!(await exists('config.json'))) missing.push('config.json');
  if (wants.weights) {
    let found = false;
    for (const cand of WEIGHT_CANDIDATES) {
      if (!(await exists(cand))) continue;
      if (cand.endsWith('.index.json')) {
        const shards = shardsOf(await readFile(join(dir, cand), 'utf8'), cand);
        const absent: string[] = [];
        for (const s of shards) if (!(await exists(s))) absent.push(s);
        if (absent.length > 0) {
          missing.push(`shards of ${cand}: ${absent.join(', ')}`);
          continue;
        }
      }
      found = true;
      break;
    }
    if (!found && !missing.some((m) => m.startsWith('shards'))) missing.push(`weights (one of ${WEIGHT_CANDIDATES.join(', ')})`);
  }
  // Tokenizer files are optional per repo (state-spaces Mamba has none), so they only decide
  // completeness for a tokenizer-only load; a model load with config and weights is complete.
  if (wants.tokenizer && !wants.weights) {
    const any = await Promise.all(['tokenizer.json', 'tokenizer_config.json', 'vocab.txt', 'tokenizer.model'].map(exists));
    if (!any.some(Boolean)) missing.push('tokenizer files (tokenizer.json / tokenizer_config.json / vocab.txt)');
  }
  return missing;
}
