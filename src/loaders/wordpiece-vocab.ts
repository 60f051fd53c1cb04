/**
 * Older BERT-family repos ship only `vocab.txt` (and maybe `tokenizer_config.json`), while the
 * transformers.js tokenizer classes need a `tokenizer.json`. This builds the same tokenizer.json
 * Python's BertTokenizerFast conversion produces: BertNormalizer, BertPreTokenizer, WordPiece
 * with `##` continuation, and the [CLS] A [SEP] (B [SEP]) template.
 */

/** Tokenizer classes whose slow version is a WordPiece vocab.txt. */
const WORDPIECE_CLASSES = new Set(['BertTokenizer', 'DistilBertTokenizer', 'ElectraTokenizer']);
/** model_type values whose default tokenizer is BertTokenizer (when no tokenizer_config says so). */
const WORDPIECE_MODEL_TYPES = new Set(['bert', 'distilbert', 'electra']);

/** Whether a folder with vocab.txt but no tokenizer.json can be served by {@link wordPieceTokenizerJson}. */
export function isWordPieceFolder(tokenizerConfig: Record<string, unknown>, modelConfig: Record<string, unknown> | undefined): boolean {
  const cls = typeof tokenizerConfig.tokenizer_class === 'string' ? tokenizerConfig.tokenizer_class.replace(/Fast$/, '') : undefined;
  if (cls !== undefined) return WORDPIECE_CLASSES.has(cls);
  return typeof modelConfig?.model_type === 'string' && WORDPIECE_MODEL_TYPES.has(modelConfig.model_type);
}

function tokenName(config: Record<string, unknown>, key: string, fallback: string): string {
  const v = config[key];
  if (typeof v === 'string') return v;
  if (typeof v === 'object' && v !== null && typeof (v as { content?: unknown }).content === 'string') return (v as { content: string }).content;
  return fallback;
}

/** A tokenizer.json object for a WordPiece `vocab.txt` and the settings in `tokenizer_config.json`. */
export function wordPieceTokenizerJson(vocabText: string, config: Record<string, unknown>, source: string): Record<string, unknown> {
  const vocab: Record<string, number> = {};
  // One token per line; as in Python's load_vocab, a repeated token keeps its last index.
  vocabText.split('\n').forEach((line, i, lines) => {
    const token = line.replace(/\r$/, '');
    if (token === '' && i === lines.length - 1) return;
    vocab[token] = i;
  });
  const special = {
    unk: tokenName(config, 'unk_token', '[UNK]'),
    cls: tokenName(config, 'cls_token', '[CLS]'),
    sep: tokenName(config, 'sep_token', '[SEP]'),
    pad: tokenName(config, 'pad_token', '[PAD]'),
    mask: tokenName(config, 'mask_token', '[MASK]'),
  };
  for (const [role, tok] of Object.entries(special)) {
    if (vocab[tok] === undefined && role !== 'mask') throw new Error(`${source}: special token ${tok} (${role}_token) is not in the vocabulary`);
  }
  const added = Object.values(special)
    .filter((t) => vocab[t] !== undefined)
    .sort((a, b) => vocab[a] - vocab[b])
    .map((content) => ({ id: vocab[content], content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }));
  const lowercase = config.do_lower_case !== false;
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: {
      type: 'BertNormalizer',
      clean_text: true,
      handle_chinese_chars: config.tokenize_chinese_chars !== false,
      strip_accents: typeof config.strip_accents === 'boolean' ? config.strip_accents : null,
      lowercase,
    },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: special.cls, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: special.sep, type_id: 0 } }],
      pair: [
        { SpecialToken: { id: special.cls, type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: special.sep, type_id: 0 } },
        { Sequence: { id: 'B', type_id: 1 } },
        { SpecialToken: { id: special.sep, type_id: 1 } },
      ],
      special_tokens: {
        [special.cls]: { id: special.cls, ids: [vocab[special.cls]], tokens: [special.cls] },
        [special.sep]: { id: special.sep, ids: [vocab[special.sep]], tokens: [special.sep] },
      },
    },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: { type: 'WordPiece', unk_token: special.unk, continuing_subword_prefix: '##', max_input_chars_per_word: 100, vocab },
  };
}
