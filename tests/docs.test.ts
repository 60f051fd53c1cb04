import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'vitest';

/**
 * Every ```ts block in README.md and docs/*.md runs as written (imports of 'tessera' resolve to
 * src/index.ts). A block preceded by the line `<!-- not-run -->` is shown only (e.g. one that
 * needs the network).
 */
const root = join(import.meta.dirname, '..');
const snippets = join(import.meta.dirname, '.doc-snippets');
rmSync(snippets, { recursive: true, force: true });
mkdirSync(snippets, { recursive: true });

const files = ['README.md', ...readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
for (const file of files) {
  const text = readFileSync(join(root, file), 'utf8');
  const blocks = [...text.matchAll(/(<!-- not-run -->\s*\n)?```ts\n([\s\S]*?)```/g)].filter((m) => m[1] === undefined).map((m) => m[2]!);
  if (blocks.length === 0) continue;
  describe(file, () => {
    blocks.forEach((code, i) => {
      it(`example ${i + 1} runs`, async () => {
        const path = join(snippets, `${file.replace(/[/.]/g, '_')}_${i + 1}.ts`);
        writeFileSync(path, code);
        await import(path);
      });
    });
  });
}
