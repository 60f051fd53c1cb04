// The binary's help, usage errors, failures and `inspect`, run as a user runs them.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AutoCausalLM, AutoEncoder, hookPoints } from '../../src/index.js';
import { oneLineError, runCli } from './run-cli.js';

const FIX = join(import.meta.dirname, '..', 'fixtures');
const COMMANDS = ['generate', 'embed', 'inspect', 'download', 'distill', 'export'];

describe('tessera: help and errors', () => {
  it('has --help for the program and every command', async () => {
    const [top, version, bare, ...each] = await Promise.all([
      runCli(['--help']),
      runCli(['--version']),
      runCli([]),
      ...COMMANDS.map((c) => runCli([c, '--help'])),
    ]);
    expect(top.code).toBe(0);
    expect(version.stdout.trim()).toBe(JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'package.json'), 'utf8')).version);
    // No command at all: the help, on stderr, as a usage error.
    expect(bare.code).toBe(2);
    expect(bare.stdout).toBe('');
    expect(bare.stderr).toContain('Usage: tessera [options] [command]');
    for (const c of COMMANDS) expect(top.stdout).toMatch(new RegExp(`^  ${c} `, 'm'));
    each.forEach((r, i) => {
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(`Usage: tessera ${COMMANDS[i]} `);
      expect(r.stdout).toContain('--help');
    });
  });

  it('a usage error is one line and exit status 2', async () => {
    const runs = await Promise.all([
      runCli(['inspect']), // missing argument
      runCli(['inspect', 'x', '--bogus']),
      runCli(['generate', 'x', 'hi', '--max-new-tokens', '0']),
      runCli(['generate', 'x', 'hi', '--top-p', '1.5']),
      runCli(['embed', 'x', 'a', '--pooling', 'max']),
      runCli(['export', 'x', 'y', '--format', 'onnx']),
      runCli(['genrate']),
    ]);
    const lines = runs.map((r) => {
      expect(r.code).toBe(2);
      return oneLineError(r.stderr);
    });
    expect(lines[0]).toContain("missing required argument 'model'");
    expect(lines[1]).toContain("unknown option '--bogus'");
    expect(lines[2]).toContain('--max-new-tokens');
    expect(lines[3]).toContain('--top-p');
    expect(lines[4]).toContain('mean, cls');
    expect(lines[5]).toContain('hf, tessera');
    expect(lines[6]).toContain("Did you mean generate?");
  });

  it('a failed command is one line and exit status 1; --verbose or TESSERA_DEBUG adds the stack', async () => {
    const [plain, verbose, debug, wrongKind] = await Promise.all([
      runCli(['inspect', './no/such/model']),
      runCli(['--verbose', 'inspect', './no/such/model']),
      runCli(['inspect', './no/such/model'], { env: { TESSERA_DEBUG: '1' } }),
      runCli(['generate', join(FIX, 'bert-tiny'), 'hello']),
    ]);
    expect(plain.code).toBe(1);
    expect(oneLineError(plain.stderr)).toContain("'./no/such/model' is neither an existing folder nor a Hugging Face model name");
    for (const r of [verbose, debug]) {
      expect(r.code).toBe(1);
      expect(r.stderr.split('\n')[0]).toBe(oneLineError(plain.stderr));
      expect(r.stderr).toMatch(/\n\s+at /);
    }
    expect(wrongKind.code).toBe(1);
    expect(oneLineError(wrongKind.stderr)).toContain('bert models cannot be loaded with AutoCausalLM');
    expect(wrongKind.tensorsLeft).toBe(0);
  });
});

describe('tessera inspect', () => {
  it('--json: counts, hook points and config match the library', async () => {
    const [llama, bert] = await Promise.all([
      runCli(['inspect', join(FIX, 'llama-tiny'), '--json']),
      runCli(['inspect', join(FIX, 'bert-tiny'), '--json']),
    ]);
    for (const [run, load] of [
      [llama, () => AutoCausalLM.fromDir(join(FIX, 'llama-tiny'))],
      [bert, () => AutoEncoder.fromDir(join(FIX, 'bert-tiny'))],
    ] as const) {
      expect(run.code).toBe(0);
      expect(run.tensorsLeft).toBe(0);
      const report = JSON.parse(run.stdout);
      const model = await load();
      try {
        expect(report.totalParameters).toBe(model.parameterCount());
        expect(report.hookPoints).toEqual(hookPoints(model));
        expect(report.config.model_type).toBe(model.architecture);
        const blocks = Object.keys(report.parameters);
        expect(blocks).toContain('embeddings');
        expect(blocks.filter((b) => /^layers\.\d+$/.test(b))).toHaveLength(model.layers.length);
        expect(Object.values(report.parameters as Record<string, number>).reduce((a, b) => a + b, 0)).toBe(report.totalParameters);
      } finally {
        model.dispose();
      }
    }
    expect(JSON.parse(llama.stdout).kind).toBe('causal-lm');
    expect(JSON.parse(bert.stdout).kind).toBe('encoder');
  });

  it('prints text by default: architecture, per-block counts, total and folded hook points', async () => {
    const run = await runCli(['inspect', join(FIX, 'jamba-tiny')]);
    expect(run.code).toBe(0);
    const model = await AutoCausalLM.fromDir(join(FIX, 'jamba-tiny'));
    try {
      const points = hookPoints(model);
      expect(run.stdout).toMatch(/^architecture {2}jamba \(loaded as causal-lm\)$/m);
      expect(run.stdout).toMatch(new RegExp(`^  total +${model.parameterCount().toLocaleString('en-US')}$`, 'm'));
      expect(run.stdout).toMatch(/^ {2}layers\.3 +[\d,]+$/m);
      expect(run.stdout).toContain(`hook points (${points.length};`);
      // Per-layer points are listed once with the layers that have them (Jamba: Mamba and attention alternate).
      const layersWith = (suffix: string) => points.filter((p) => p.endsWith(suffix) && /^layers\.\d+\./.test(p)).map((p) => Number(p.split('.')[1]));
      const attention = layersWith('.mixer.q');
      const mamba = layersWith('.mixer.inProj');
      expect(attention.length + mamba.length).toBe(model.layers.length);
      expect(run.stdout).toMatch(new RegExp(`^  layers\\.\\{${attention.join(',')}\\}\\.mixer\\.q$`, 'm'));
      expect(run.stdout).toMatch(new RegExp(`^  layers\\.\\{${mamba.join(',')}\\}\\.mixer\\.inProj$`, 'm'));
      expect(run.stdout).toMatch(new RegExp(`^  layers\\.\\{0-${model.layers.length - 1}\\}\\.ffn$`, 'm'));
      expect(run.stdout).not.toMatch(/^ {2}layers\.0\.mixer$/m);
    } finally {
      model.dispose();
    }
  });
});
