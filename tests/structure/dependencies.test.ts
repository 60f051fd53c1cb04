import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '../..');
const CONFIG = join(ROOT, '.dependency-cruiser.cjs');
const DEPCRUISE = join(ROOT, 'node_modules/.bin/depcruise');

interface Violation {
  from: string;
  to: string;
  cycle?: { name: string }[];
  rule: { name: string };
}

interface CruiseResult {
  summary: { violations: Violation[]; totalCruised: number };
}

/** Run depcruise over `src` of `cwd` with the repository's rules and return its JSON report. */
function cruise(cwd: string): CruiseResult {
  const run = spawnSync(DEPCRUISE, ['src', '--config', CONFIG, '--output-type', 'json'], { cwd, encoding: 'utf8', maxBuffer: 64 << 20 });
  // depcruise exits non-zero when it finds violations; only a missing report is a failure to run.
  if (run.stdout === '') throw new Error(`depcruise did not run (exit ${run.status}): ${run.stderr}`);
  return JSON.parse(run.stdout) as CruiseResult;
}

/** A violation as one readable line, e.g. `models-know-no-services: src/models/x.ts -> src/hooks/run.ts`. */
function describeViolation(v: Violation): string {
  const path = v.cycle !== undefined ? [v.from, ...v.cycle.map((step) => step.name)].join(' -> ') : `${v.from} -> ${v.to}`;
  return `${v.rule.name}: ${path}`;
}

const ruleNames: string[] = (createRequire(import.meta.url)(CONFIG) as { forbidden: { name: string }[] }).forbidden.map((r) => r.name);

/**
 * One deliberate breach per rule, caught by that rule alone: `from` imports `to` (and `to`
 * imports `from` for the cycle, which is reported once).
 */
const BREACHES: { rule: string; from: string; to: string }[] = [
  { rule: 'imports-resolve', from: 'src/models/unresolved.ts', to: 'src/models/missing.ts' },
  { rule: 'no-circular', from: 'src/models/ping.ts', to: 'src/models/pong.ts' },
  { rule: 'layers-stay-below', from: 'src/layers/up.ts', to: 'src/models/model.ts' },
  { rule: 'layers-name-no-backend', from: 'src/layers/fast.ts', to: 'src/kernels/native.ts' },
  { rule: 'ops-not-layers', from: 'src/ops/norm.ts', to: 'src/layers/norm.ts' },
  { rule: 'kernels-know-nothing-above', from: 'src/kernels/scan.ts', to: 'src/ops/scan.ts' },
  { rule: 'util-imports-nothing', from: 'src/util/check.ts', to: 'src/layers/module.ts' },
  { rule: 'architectures-not-loaders', from: 'src/architectures/llama.ts', to: 'src/loaders/names.ts' },
  { rule: 'models-know-no-services', from: 'src/models/lm.ts', to: 'src/generation/generate.ts' },
  { rule: 'generation-not-beside', from: 'src/generation/steps.ts', to: 'src/hooks/run.ts' },
  { rule: 'hooks-not-beside', from: 'src/hooks/capture.ts', to: 'src/generation/cache.ts' },
  { rule: 'loaders-not-services', from: 'src/loaders/auto.ts', to: 'src/hooks/points.ts' },
  { rule: 'training-on-top', from: 'src/model-methods.ts', to: 'src/training/distiller.ts' },
  { rule: 'pipelines-for-users', from: 'src/generation/text.ts', to: 'src/pipelines/pipeline.ts' },
  { rule: 'cli-on-top', from: 'src/loaders/hub/progress.ts', to: 'src/cli/main.ts' },
];

/** Write a tiny source tree holding every breach, each with its own files so they do not mix. */
async function writeBreaches(dir: string): Promise<void> {
  const files = new Map<string, string>();
  const importOf = (from: string, to: string): string => {
    const path = relative(dirname(from), to).replace(/\.ts$/, '.js');
    return `import { value } from '${path.startsWith('.') ? path : `./${path}`}';\n`;
  };
  for (const { rule, from, to } of BREACHES) {
    files.set(from, `${importOf(from, to)}export const value = 1;\n`);
    if (rule === 'imports-resolve') continue; // `to` stays missing
    files.set(to, rule === 'no-circular' ? `${importOf(to, from)}export const value = 2;\n` : 'export const value = 2;\n');
  }
  for (const [path, text] of files) {
    await mkdir(join(dir, dirname(path)), { recursive: true });
    await writeFile(join(dir, path), text);
  }
  await writeFile(
    join(dir, 'tsconfig.json'),
    JSON.stringify({ compilerOptions: { module: 'ESNext', moduleResolution: 'Bundler', strict: true }, include: ['src'] }),
  );
}

describe('import rules (.dependency-cruiser.cjs)', () => {
  it('src keeps every folder rule and has no import cycle', () => {
    const { summary } = cruise(ROOT);
    expect(summary.totalCruised).toBeGreaterThan(100); // the cruise saw the real tree
    expect(summary.violations.map(describeViolation)).toEqual([]);
  });

  it('each rule catches a deliberate breach', async () => {
    expect([...ruleNames].sort()).toEqual(BREACHES.map((b) => b.rule).sort());
    const dir = await mkdtemp(join(tmpdir(), 'tessera-depcruise-'));
    try {
      await writeBreaches(dir);
      const found = cruise(dir).summary.violations.map((v) => `${v.rule.name}: ${v.from}`);
      const expected = BREACHES.map((b) => `${b.rule}: ${b.from}`);
      expect([...new Set(found)].sort()).toEqual(expected.sort());
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
