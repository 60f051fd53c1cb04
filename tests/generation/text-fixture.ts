/**
 * A llama-tiny folder with a tokenizer: the fixture's config and weights beside a small
 * SentencePiece-style BPE tokenizer with byte fallback (Llama's layout: `<unk>` 0, `<s>` 1, `</s>` 2,
 * the 256 byte tokens `<0x00>`..`<0xFF>` at 3..258, then pieces), built here because the fixture
 * ships none. Characters outside its pieces (emoji, CJK) encode as their UTF-8 bytes.
 */
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TINY_TOKENIZER_CONFIG, tinyTokenizerJson } from '../../examples/lens/tiny-tokenizer.js';
import { fixture } from '../helpers.js';

const WORDS = ['the', 'once', 'upon', 'time', 'there', 'was', 'hello', 'world', 'stop', 'end', 'and', 'a', 'is', 'of', 'to', 'in', 'it'];

/** The tokenizer.json: the Lens's tiny byte-fallback BPE over these tests' words. */
export function tokenizerJson(): Record<string, unknown> {
  return tinyTokenizerJson(WORDS);
}

/**
 * A fresh folder with llama-tiny's config and weights, the test tokenizer, and (when given)
 * `generation_config.json`. `config` entries are merged into config.json.
 */
export function llamaWithTokenizer(options: { generationConfig?: Record<string, unknown>; config?: Record<string, unknown> } = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-text-'));
  const config = { ...(JSON.parse(readFileSync(fixture('llama-tiny/config.json'), 'utf8')) as object), ...options.config };
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  copyFileSync(fixture('llama-tiny/model.safetensors'), join(dir, 'model.safetensors'));
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tokenizerJson()));
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(TINY_TOKENIZER_CONFIG));
  if (options.generationConfig !== undefined) writeFileSync(join(dir, 'generation_config.json'), JSON.stringify(options.generationConfig));
  return dir;
}

/** GPT-2's byte → printable-character table (byte-level BPE writes each byte as one of these). */
function bytesToUnicode(): string[] {
  const bytes: number[] = [];
  for (const [from, to] of [[33, 126], [161, 172], [174, 255]] as const) for (let b = from; b <= to; b++) bytes.push(b);
  const chars = [...bytes];
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    if (!bytes.includes(b)) {
      bytes.push(b);
      chars.push(256 + extra++);
    }
  }
  const table: string[] = [];
  bytes.forEach((b, i) => (table[b] = String.fromCharCode(chars[i]!)));
  return table;
}

/**
 * A folder with a GPT-2-style byte-level BPE tokenizer without merges: every UTF-8 byte is one
 * token (ids 0..255), `<|endoftext|>` is 256. An emoji is four tokens, a CJK character three.
 */
export function byteLevelTokenizerDir(): string {
  const vocab: Record<string, number> = Object.fromEntries(bytesToUnicode().map((c, b) => [c, b]));
  vocab['<|endoftext|>'] = 256;
  const byteLevel = { add_prefix_space: false, trim_offsets: true, use_regex: true };
  const json = {
    version: '1.0', truncation: null, padding: null,
    added_tokens: [{ id: 256, content: '<|endoftext|>', single_word: false, lstrip: false, rstrip: false, normalized: true, special: true }],
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', ...byteLevel },
    post_processor: { type: 'ByteLevel', ...byteLevel },
    decoder: { type: 'ByteLevel', ...byteLevel },
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '', fuse_unk: false, byte_fallback: false, vocab, merges: [] },
  };
  const dir = mkdtempSync(join(tmpdir(), 'tessera-bytelevel-'));
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(json));
  const config = { tokenizer_class: 'GPT2Tokenizer', bos_token: '<|endoftext|>', eos_token: '<|endoftext|>', unk_token: '<|endoftext|>', clean_up_tokenization_spaces: false };
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(config));
  return dir;
}
