/**
 * A llama-tiny folder with a tokenizer: the fixture's config and weights beside a small
 * SentencePiece-style BPE tokenizer with byte fallback (Llama's layout: `<unk>` 0, `<s>` 1, `</s>` 2,
 * the 256 byte tokens `<0x00>`..`<0xFF>` at 3..258, then pieces), built here because the fixture
 * ships none. Characters outside its pieces (emoji, CJK) encode as their UTF-8 bytes.
 */
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixture } from '../helpers.js';

const SPACE = '\u2581';
const CHARS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,!?\'-:;\n';
const WORDS = ['the', 'once', 'upon', 'time', 'there', 'was', 'hello', 'world', 'stop', 'end', 'and', 'a', 'is', 'of', 'to', 'in', 'it'];

/** The tokenizer.json: vocabulary, merges, Llama's normalizer, post-processor and decoder. */
export function tokenizerJson(): Record<string, unknown> {
  const vocab: Record<string, number> = { '<unk>': 0, '<s>': 1, '</s>': 2 };
  for (let b = 0; b < 256; b++) vocab[`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`] = 3 + b;
  const add = (piece: string): void => {
    vocab[piece] ??= Object.keys(vocab).length;
  };
  add(SPACE);
  for (const c of CHARS) add(c);
  const merges: string[] = [];
  // Each word as ▁w, ▁wo, ▁wor ...: one merge per step, left to right.
  for (const word of WORDS) {
    let piece = SPACE;
    for (const c of word) {
      merges.push(`${piece} ${c}`);
      piece += c;
      add(piece);
    }
  }
  if (Object.keys(vocab).length > 512) throw new Error(`test tokenizer has ${Object.keys(vocab).length} pieces, more than llama-tiny's 512`);
  const special = (id: number, content: string) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [special(0, '<unk>'), special(1, '<s>'), special(2, '</s>')],
    normalizer: { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: SPACE }, { type: 'Replace', pattern: { String: ' ' }, content: SPACE }] },
    pre_tokenizer: null,
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } }],
      special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
    },
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: SPACE }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        { type: 'Strip', content: ' ', start: 1, stop: 0 },
      ],
    },
    model: {
      type: 'BPE', dropout: null, unk_token: '<unk>', continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: true, byte_fallback: true, vocab, merges,
    },
  };
}

const TOKENIZER_CONFIG = {
  tokenizer_class: 'LlamaTokenizer', bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>', pad_token: null,
  add_bos_token: true, add_eos_token: false, clean_up_tokenization_spaces: false, legacy: false, model_max_length: 128,
};

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
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(TOKENIZER_CONFIG));
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
