/**
 * A tokenizer for the bundled tiny models, whose fixtures ship none (their weights are random, so
 * any 512-entry vocabulary fits): Llama's layout (`<unk>` 0, `<s>` 1, `</s>` 2, 256 byte-fallback
 * tokens, then ▁-prefixed pieces). The text-generation tests build theirs with it too
 * (tests/generation/text-fixture.ts), with their own words.
 */
const SPACE = '\u2581';
const CHARS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,!?\'-:;\n';
const WORDS = ['the', 'once', 'upon', 'time', 'there', 'was', 'hello', 'world', 'and', 'a', 'is', 'of', 'to', 'in', 'it', 'lens', 'model'];

/** The tokenizer.json: single characters, each of `words` as ▁w, ▁wo, ... (one merge per step). */
export function tinyTokenizerJson(words: readonly string[] = WORDS): Record<string, unknown> {
  const vocab: Record<string, number> = { '<unk>': 0, '<s>': 1, '</s>': 2 };
  for (let b = 0; b < 256; b++) vocab[`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`] = 3 + b;
  const add = (piece: string): void => {
    vocab[piece] ??= Object.keys(vocab).length;
  };
  add(SPACE);
  for (const c of CHARS) add(c);
  const merges: string[] = [];
  for (const word of words) {
    let piece = SPACE;
    for (const c of word) {
      merges.push(`${piece} ${c}`);
      piece += c;
      add(piece);
    }
  }
  if (Object.keys(vocab).length > 512) throw new Error(`tiny tokenizer has ${Object.keys(vocab).length} pieces, more than the tiny models' 512`);
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
      decoders: [{ type: 'Replace', pattern: { String: SPACE }, content: ' ' }, { type: 'ByteFallback' }, { type: 'Fuse' }, { type: 'Strip', content: ' ', start: 1, stop: 0 }],
    },
    model: { type: 'BPE', dropout: null, unk_token: '<unk>', continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: true, byte_fallback: true, vocab, merges },
  };
}

export const TINY_TOKENIZER_CONFIG = {
  tokenizer_class: 'LlamaTokenizer', bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>', pad_token: null,
  add_bos_token: true, add_eos_token: false, clean_up_tokenization_spaces: false, legacy: false, model_max_length: 128,
};
