import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { AutoTokenizer } from '../../src/index.js';
import { RowText } from '../../src/generation/text-stream.js';
import { byteLevelTokenizerDir, llamaWithTokenizer } from './text-fixture.js';

describe('RowText: token ids to final text, one token at a time', () => {
  let dir: string;
  let tok: AutoTokenizer;
  const decode = (ids: number[]): string => tok.decode(ids, { skipSpecialTokens: true });
  /** What generate's text is by definition: the whole sequence decoded, the prompt's text cut off. */
  const after = (prompt: number[], ids: number[]): string => decode([...prompt, ...ids]).slice(decode(prompt).length);

  beforeAll(async () => {
    dir = llamaWithTokenizer();
    tok = await AutoTokenizer.fromDir(dir);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('a long row (many settled windows) with multibyte characters: whole-character pieces that join to the full text', () => {
    const prompt = tok.inner.encode('Once upon a').map(Number);
    const ids = tok.inner.encode('there was a world 😀 and 世界, hello! the end of it is near.\n'.repeat(40), { add_special_tokens: false }).map(Number);
    expect(ids.length).toBeGreaterThan(500);
    let longest = 0;
    const row = new RowText((x) => ((longest = Math.max(longest, x.length)), decode(x)), prompt, []);
    const pieces = ids.map((id) => row.push(id));
    expect(longest).toBeLessThan(64); // settled text is not decoded again: a step's work does not grow with the row
    pieces.push(row.finish());
    for (const piece of pieces) expect(piece).not.toContain('\uFFFD');
    expect(pieces.join('')).toBe(after(prompt, ids));
    expect(row.text).toBe(after(prompt, ids));
    expect(row.stopped).toBe(false);
  });

  it('finds a stop string far into the row, across a settled boundary, and cuts the text before it', () => {
    const prompt = [1];
    const body = 'hello world and the end of it. '.repeat(30);
    const stop = 'it. hello wor';
    const ids = tok.inner.encode(`${body}STOP here`, { add_special_tokens: false }).map(Number);
    const row = new RowText(decode, prompt, [stop, 'STOP']);
    let joined = '';
    let used = 0;
    for (const id of ids) {
      joined += row.push(id);
      used++;
      if (row.stopped) break;
    }
    const full = after(prompt, ids);
    expect(row.text).toBe(full.slice(0, full.indexOf(stop)));
    expect(joined).toBe(row.text);
    expect(used).toBeLessThan(ids.length / 10); // it stopped where the stop string completed
  });

  it('an incomplete character at the end is given out by finish, as the decoder writes it', () => {
    const bytes = tok.inner.encode('😀', { add_special_tokens: false }).map(Number).slice(0, 3); // ▁ and two of four bytes
    const row = new RowText(decode, [1], []);
    const pieces = bytes.map((id) => row.push(id));
    expect(pieces.join('')).not.toContain('\uFFFD');
    const rest = row.finish();
    expect(pieces.join('') + rest).toBe(after([1], bytes));
    expect(rest).toContain('\uFFFD');
  });
});

describe('RowText with a byte-level BPE tokenizer (GPT-2 style: every byte a token)', () => {
  let dir: string;
  let tok: AutoTokenizer;
  beforeAll(async () => {
    dir = byteLevelTokenizerDir();
    tok = await AutoTokenizer.fromDir(dir);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('hands out each multibyte character whole, and the pieces join to the decoded text', () => {
    const decode = (ids: number[]): string => tok.decode(ids, { skipSpecialTokens: true });
    const prompt = tok.inner.encode('Say:').map(Number);
    const ids = [...tok.inner.encode(' hi 😀 世界! ✓ done').map(Number), 256];
    expect(ids.map((_, n) => decode(ids.slice(0, n + 1))).some((t) => t.endsWith('\uFFFD'))).toBe(true); // prefixes split characters
    const row = new RowText(decode, prompt, []);
    const pieces = ids.map((id) => row.push(id));
    pieces.push(row.finish());
    for (const piece of pieces) expect(piece).not.toContain('\uFFFD');
    expect(pieces).toContain('😀');
    expect(pieces).toContain('世');
    expect(pieces.join('')).toBe(' hi 😀 世界! ✓ done');
    expect(pieces.join('')).toBe(decode([...prompt, ...ids]).slice(decode(prompt).length));
  });
});
