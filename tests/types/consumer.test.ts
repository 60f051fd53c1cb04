// The docs' examples as a user's own TypeScript project sees them: built into a package
// (`npm run build`, the package.json's exports and types), imported as 'tessera', type-checked
// strictly under NodeNext and under Bundler resolution.
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { promisify } from 'node:util';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = join(import.meta.dirname, '../..');

/** A docs example as its own file. */
interface Example {
  file: string;
  code: string;
}

/**
 * Every ```ts block of README.md and docs/*.md, read when the test runs (pages added later are
 * included), `<!-- not-run -->` ones too: they are shown for users to copy, only not run offline.
 * A block importing a relative path (`./src/kernels/native/...`) quotes Tessera's own sources,
 * not code for a user's project, and is left out.
 */
function docExamples(): Example[] {
  const pages = ['README.md', ...readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md')).sort().map((f) => `docs/${f}`)];
  const examples: Example[] = [];
  for (const page of pages) {
    const blocks = [...readFileSync(join(root, page), 'utf8').matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!);
    blocks.forEach((code, i) => {
      if (/\bfrom\s+['"]\.\.?\//.test(code)) return;
      // `export {}` makes each file a module of its own: top-level await, no names shared.
      examples.push({ file: `${page.replace(/[/.]/g, '_')}_${i + 1}.ts`, code: `${code}\nexport {};\n` });
    });
  }
  return examples;
}

/** Deliberate mistakes: the check must report each, or it is not checking anything. */
const CONTROL = `import * as tf from '@tensorflow/tfjs-core';
import { AutoCausalLM } from 'tessera';
AutoCausalLM.fromConfg({});
tf.ones([2]).notAChainedMethod();
export {};
`;

const STRICT = {
  strict: true,
  // Tessera's own declaration files are checked too; dependencies' are filtered out below.
  skipLibCheck: false,
  target: 'ES2022',
  noEmit: true,
};
const MODES = {
  NodeNext: { ...STRICT, module: 'NodeNext', moduleResolution: 'NodeNext' },
  Bundler: { ...STRICT, module: 'ESNext', moduleResolution: 'Bundler' },
} as const;

let consumer = '';
let examples: Example[] = [];

beforeAll(async () => {
  // Inside the repository (in the git-ignored .tmp/), so the package's dependencies resolve from
  // its node_modules as they would from a user's. The build goes to the consumer's copy of the
  // package, not to dist/: nothing is left in the tree, and two runs at once do not collide.
  mkdirSync(join(root, '.tmp'), { recursive: true });
  consumer = mkdtempSync(join(root, '.tmp', 'consumer-'));
  const pkg = join(consumer, 'node_modules', 'tessera');
  mkdirSync(pkg, { recursive: true });
  copyFileSync(join(root, 'package.json'), join(pkg, 'package.json'));
  await run('npm', ['run', 'build', '--', '--outDir', join(pkg, 'dist')], { cwd: root }).catch((e: { stdout?: string }) => {
    throw new Error(`npm run build failed:\n${e.stdout ?? String(e)}`);
  });

  writeFileSync(join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  mkdirSync(join(consumer, 'examples'));
  examples = docExamples();
  for (const { file, code } of examples) writeFileSync(join(consumer, 'examples', file), code);
  writeFileSync(join(consumer, 'control.ts'), CONTROL);
  for (const [mode, compilerOptions] of Object.entries(MODES)) {
    const config = { compilerOptions, include: ['examples', 'control.ts'] };
    writeFileSync(join(consumer, `tsconfig.${mode}.json`), JSON.stringify(config, null, 2));
  }
}, 300_000);

afterAll(() => {
  if (consumer !== '') rmSync(consumer, { recursive: true, force: true });
});

/** The diagnostics of one `tsc --noEmit -p tsconfig.<mode>.json`, with their files. */
function typeCheck(mode: keyof typeof MODES): { program: ts.Program; diagnostics: readonly ts.Diagnostic[] } {
  const path = join(consumer, `tsconfig.${mode}.json`);
  const { config } = ts.readConfigFile(path, ts.sys.readFile);
  const parsed = ts.parseJsonConfigFileContent(config, ts.sys, consumer, undefined, path);
  const program = ts.createProgram({ rootNames: parsed.fileNames, options: parsed.options });
  return { program, diagnostics: [...parsed.errors, ...ts.getPreEmitDiagnostics(program)] };
}

/**
 * Whose a diagnostic is. Errors inside dependencies' own declaration files (tfjs-core's, the HF
 * libraries') are theirs, and a user's `skipLibCheck` hides them; errors in the examples, in
 * Tessera's declaration files or in the configuration are Tessera's.
 */
function owner(d: ts.Diagnostic): 'control' | 'tessera' | 'dependency' {
  if (d.file === undefined) return 'tessera';
  const file = relative(consumer, d.file.fileName);
  if (file === 'control.ts') return 'control';
  const inDependency = file.startsWith('..') || (file.includes(`node_modules${sep}`) && !file.startsWith(join('node_modules', 'tessera')));
  return inDependency ? 'dependency' : 'tessera';
}

const format = (ds: readonly ts.Diagnostic[]): string =>
  ts.formatDiagnostics(ds, { getCanonicalFileName: (f) => f, getCurrentDirectory: () => consumer, getNewLine: () => '\n' });

describe('docs examples in a consumer project (built package, strict)', () => {
  it('finds the examples of every page', () => {
    expect(examples.length).toBeGreaterThan(20);
    expect(examples.some((e) => e.file.startsWith('README_md'))).toBe(true);
  });

  for (const mode of Object.keys(MODES) as (keyof typeof MODES)[]) {
    it(`the examples type-check under ${mode} resolution`, () => {
      const { program, diagnostics } = typeCheck(mode);
      // 'tessera' resolved to the built package through package.json's exports, not to src/.
      const files = program.getSourceFiles().map((f) => relative(consumer, f.fileName));
      expect(files).toContain(join('node_modules', 'tessera', 'dist', 'index.d.ts'));
      expect(files.some((f) => f.includes(`${sep}src${sep}`) && !f.includes('node_modules'))).toBe(false);

      const control = diagnostics.filter((d) => owner(d) === 'control').map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
      expect(control).toEqual([
        expect.stringContaining("'fromConfg' does not exist"),
        expect.stringContaining("'notAChainedMethod' does not exist"),
      ]);
      // Compared as text: a diagnostic holds its whole source file, far too big for a diff.
      expect(format(diagnostics.filter((d) => owner(d) === 'tessera'))).toBe('');
    }, 300_000);
  }

  it('the built package runs under plain Node, with the chained methods it types', async () => {
    const script = `
      import * as tf from '@tensorflow/tfjs-core';
      import { AutoCausalLM, initBackend } from 'tessera';
      await initBackend({ backend: 'cpu' });
      const lm = AutoCausalLM.fromConfig({ model_type: 'llama', vocab_size: 32, hidden_size: 8, intermediate_size: 16,
        num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 2 }, { seed: 1 });
      const out = lm.forward(tf.tensor2d([[1, 2, 3]], undefined, 'int32'));
      const last = out.logits.slice([0, 2, 0], [1, 1, 32]).reshape([32]);
      const chained = last.sub(last.max()).exp().sum().arraySync();
      const plain = tf.sum(tf.exp(tf.sub(last, tf.max(last)))).arraySync();
      console.log(JSON.stringify({ chained, plain, backend: tf.getBackend() }));
    `;
    writeFileSync(join(consumer, 'smoke.mjs'), script);
    const { stdout } = await run(process.execPath, ['smoke.mjs'], { cwd: consumer });
    const result = JSON.parse(stdout.trim().split('\n').at(-1)!) as { chained: number; plain: number; backend: string };
    expect(result.backend).toBe('cpu');
    expect(result.chained).toBeGreaterThan(0);
    expect(result.chained).toBeCloseTo(result.plain, 6);
  });
});
