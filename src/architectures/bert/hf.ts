import type { RenameRules } from '../rename.js';

/**
 * HF `BertModel` names -> Tessera paths. Post-norm: attention.output.LayerNorm is the mixer's norm.
 * Also the names older checkpoints use: a `bert.` prefix (saved from BertForPreTraining and other
 * heads) and TF-era `LayerNorm.gamma`/`LayerNorm.beta` for weight/bias, which HF renames on load.
 */
export const bertHfNames: RenameRules = [
  [/^(?:bert\.)?embeddings\.LayerNorm\.gamma$/, 'embeddings.norm.weight'],
  [/^(?:bert\.)?embeddings\.LayerNorm\.beta$/, 'embeddings.norm.bias'],
  [/^(?:bert\.)?encoder\.layer\.(\d+)\.attention\.output\.LayerNorm\.gamma$/, 'layers.$1.mixerNorm.weight'],
  [/^(?:bert\.)?encoder\.layer\.(\d+)\.attention\.output\.LayerNorm\.beta$/, 'layers.$1.mixerNorm.bias'],
  [/^(?:bert\.)?encoder\.layer\.(\d+)\.output\.LayerNorm\.gamma$/, 'layers.$1.ffnNorm.weight'],
  [/^(?:bert\.)?encoder\.layer\.(\d+)\.output\.LayerNorm\.beta$/, 'layers.$1.ffnNorm.bias'],
  [/^(?:bert\.)?embeddings\.word_embeddings\.weight$/, 'embeddings.word.weight'],
  [/^(?:bert\.)?embeddings\.position_embeddings\.weight$/, 'embeddings.position.weight'],
  [/^(?:bert\.)?embeddings\.token_type_embeddings\.weight$/, 'embeddings.tokenType.weight'],
  [/^(?:bert\.)?embeddings\.LayerNorm\.(weight|bias)$/, 'embeddings.norm.$1'],
  [/^(?:bert\.)?encoder\.layer\.(\d+)\.attention\.self\.(query|key|value)\.(weight|bias)$/, 'layers.$1.mixer.$2.$3'],
  [/^(?:bert\.)?encoder\.layer\.(\d+)\.attention\.output\.dense\.(weight|bias)$/, 'layers.$1.mixer.output.$2'],
  [/^(?:bert\.)?encoder\.layer\.(\d+)\.attention\.output\.LayerNorm\.(weight|bias)$/, 'layers.$1.mixerNorm.$2'],
  [/^(?:bert\.)?encoder\.layer\.(\d+)\.intermediate\.dense\.(weight|bias)$/, 'layers.$1.ffn.up.$2'],
  [/^(?:bert\.)?encoder\.layer\.(\d+)\.output\.dense\.(weight|bias)$/, 'layers.$1.ffn.down.$2'],
  [/^(?:bert\.)?encoder\.layer\.(\d+)\.output\.LayerNorm\.(weight|bias)$/, 'layers.$1.ffnNorm.$2'],
  [/^(?:bert\.)?pooler\.dense\.(weight|bias)$/, 'pooler.dense.$1'],
];

/**
 * What HF does not load into a BertModel: buffers, and the pre-training heads
 * (`cls.predictions.*`, `cls.seq_relationship.*`) of a BertForPreTraining checkpoint.
 */
export const bertIgnored = [/(^|\.)position_ids$/, /^cls\./];
