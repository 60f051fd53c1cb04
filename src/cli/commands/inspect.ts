/**
 * `tessera inspect MODEL`: architecture, config, parameter counts per top-level block and the
 * hook points. Reads only config.json (a hub model's weights are not downloaded) and builds the
 * model from it: shapes, counts and hook points do not depend on the weights' values.
 */
import type { Command } from 'commander';
import type { TransformerModel } from '../../index.js';
import { startBackend, withHubFlags, type HubFlags } from '../flags.js';
import { CliError } from '../errors.js';

/** What `inspect --json` prints. */
export interface InspectReport {
  model: string;
  folder: string;
  architecture: string;
  /** The class it was built as (causal-lm, encoder, decoder). */
  kind: string;
  /** config.json as read. */
  config: Record<string, unknown>;
  /** The model's blocks as a Tessera hybrid spec (mixer, feed-forward and norm of each layer). */
  structure: unknown;
  /** Parameters per top-level block (`embeddings`, `layers.0`, ..., `finalNorm`, `lmHead`). */
  parameters: Record<string, number>;
  totalParameters: number;
  hookPoints: string[];
}

/** `layers.3.mixer.query.weight` -> `layers.3`; `embeddings.word.weight` -> `embeddings`. */
function topLevelBlock(path: string): string {
  const [first, second] = path.split('.');
  return first === 'layers' && second !== undefined ? `layers.${second}` : first!;
}

export function parameterCounts(model: TransformerModel): Record<string, number> {
  const counts: Record<string, number> = {};
  // A tied LM head holds the embedding matrix itself, so it is counted once, under embeddings.
  const seen = new Set<unknown>();
  for (const [path, p] of model.namedParameters()) {
    if (seen.has(p)) continue;
    seen.add(p);
    const block = topLevelBlock(path);
    counts[block] = (counts[block] ?? 0) + p.size;
  }
  return counts;
}

/** A structure that cannot be described (an unregistered part) is left out, not an error. */
function structureOf(model: TransformerModel, describeModel: (m: TransformerModel) => unknown): unknown {
  try {
    return describeModel(model);
  } catch (err) {
    return { error: (err as Error).message };
  }
}

function scalarSummary(config: Record<string, unknown>): string[] {
  return Object.entries(config)
    .filter(([, v]) => v === null || ['string', 'number', 'boolean'].includes(typeof v))
    .map(([k, v]) => `${k}=${JSON.stringify(v)}`);
}

/** Words joined into lines of at most `width` characters, each line after the first indented. */
function wrap(words: string[], width: number, indent: string): string {
  const lines: string[] = [];
  let line = '';
  for (const w of words) {
    if (line !== '' && line.length + 1 + w.length > width) {
      lines.push(line);
      line = w;
    } else {
      line = line === '' ? w : `${line} ${w}`;
    }
  }
  if (line !== '') lines.push(line);
  return lines.join(`\n${indent}`);
}

/** `[0, 1, 2, 5]` -> `0-2,5`. */
function ranges(indices: number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < indices.length; ) {
    let j = i;
    while (j + 1 < indices.length && indices[j + 1] === indices[j]! + 1) j++;
    parts.push(i === j ? `${indices[i]}` : `${indices[i]}-${indices[j]}`);
    i = j + 1;
  }
  return parts.join(',');
}

/**
 * Hook points with the per-layer ones folded: `layers.{0-31}.mixer.q` once instead of 32 lines;
 * a hybrid's differing layers get one line per set of layers sharing a point.
 */
export function foldHookPoints(points: readonly string[]): string[] {
  const out: string[] = [];
  const layerOf = new Map<string, number[]>(); // suffix -> layer indices
  for (const p of points) {
    const m = /^layers\.(\d+)(\..*)?$/.exec(p);
    if (m === null) {
      out.push(p);
      continue;
    }
    const suffix = m[2] ?? '';
    if (!layerOf.has(suffix)) {
      layerOf.set(suffix, []);
      out.push(`\u0000${suffix}`); // placeholder keeps the first occurrence's order
    }
    layerOf.get(suffix)!.push(Number(m[1]));
  }
  return out.map((p) => (p.startsWith('\u0000') ? `layers.{${ranges(layerOf.get(p.slice(1))!)}}${p.slice(1)}` : p));
}

function printText(r: InspectReport, out: (s: string) => void): void {
  const width = Math.max(...Object.keys(r.parameters).map((k) => k.length), 'total'.length);
  const fmt = (n: number) => n.toLocaleString('en-US');
  const lines = [
    `model         ${r.model}${r.folder !== r.model ? ` (${r.folder})` : ''}`,
    `architecture  ${r.architecture} (loaded as ${r.kind})`,
    `config        ${wrap(scalarSummary(r.config), 86, ' '.repeat(14))}`,
    'parameters',
    ...Object.entries(r.parameters).map(([k, n]) => `  ${k.padEnd(width)}  ${fmt(n).padStart(14)}`),
    `  ${'total'.padEnd(width)}  ${fmt(r.totalParameters).padStart(14)}`,
    `hook points (${r.hookPoints.length}; layers.{i-j} stands for each of those layers; --json lists them all)`,
    ...foldHookPoints(r.hookPoints).map((h) => `  ${h}`),
  ];
  out(`${lines.join('\n')}\n`);
}

export function inspectCommand(program: Command): void {
  withHubFlags(
    program
      .command('inspect')
      .description('show a model\'s architecture, config, parameter counts per block and hook points')
      .argument('<model>', 'model folder or hub name (org/name); only config.json is read')
      .option('--json', 'print one JSON document instead of text'),
  ).action(async (model: string, flags: HubFlags & { json?: boolean }, cmd: Command) => {
    const { LOADERS, folderConfig, kindFor, modelFolder } = await import('../model.js');
    const { describeModel, hookPoints } = await import('../../index.js');
    const folder = await modelFolder(model, flags, { weights: false, tokenizer: false });
    const { raw, architecture, kinds } = await folderConfig(folder);
    const kind = kindFor(kinds, undefined, raw);
    if (kind === undefined) throw new CliError(`${architecture} models (${kinds.join(', ')}) have no loader the CLI knows`);
    await startBackend(cmd);
    const built = LOADERS[kind].fromConfig(raw);
    try {
      const parameters = parameterCounts(built);
      const report: InspectReport = {
        model,
        folder,
        architecture,
        kind,
        config: raw,
        structure: structureOf(built, describeModel),
        parameters,
        totalParameters: Object.values(parameters).reduce((a, b) => a + b, 0),
        hookPoints: hookPoints(built),
      };
      const out = (s: string) => process.stdout.write(s);
      if (flags.json === true) out(`${JSON.stringify(report, null, 2)}\n`);
      else printText(report, out);
    } finally {
      built.dispose();
    }
  });
}
