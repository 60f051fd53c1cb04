import type { ModelKind } from '../model-kind.js';
import { nameMap } from '../rename.js';

const P = '{param:weight|bias}';
const LAYER = 'encoder.layer.{layer}';

/**
 * HF `BertModel` names <-> Tessera paths. Post-norm: attention.output.LayerNorm is the mixer's norm.
 * Also read: the names older checkpoints use, a `bert.` prefix (saved from BertForPreTraining and
 * other heads) and TF-era `LayerNorm.gamma`/`LayerNorm.beta` for weight/bias, which HF renames on load.
 */
export const bertNames = nameMap({
  prefix: 'bert.',
  base: [
    ['embeddings.word_embeddings.weight', 'embeddings.word.weight'],
    ['embeddings.position_embeddings.weight', 'embeddings.position.weight'],
    ['embeddings.token_type_embeddings.weight', 'embeddings.tokenType.weight'],
    [`embeddings.LayerNorm.${P}`, 'embeddings.norm.{param}'],
    [`${LAYER}.attention.self.{proj:query|key|value}.${P}`, 'layers.{layer}.mixer.{proj}.{param}'],
    [`${LAYER}.attention.output.dense.${P}`, 'layers.{layer}.mixer.output.{param}'],
    [`${LAYER}.attention.output.LayerNorm.${P}`, 'layers.{layer}.mixerNorm.{param}'],
    [`${LAYER}.intermediate.dense.${P}`, 'layers.{layer}.ffn.up.{param}'],
    [`${LAYER}.output.dense.${P}`, 'layers.{layer}.ffn.down.{param}'],
    [`${LAYER}.output.LayerNorm.${P}`, 'layers.{layer}.ffnNorm.{param}'],
    [`pooler.dense.${P}`, 'pooler.dense.{param}'],
  ],
  // BertForMaskedLM's head (`cls.predictions`, outside the base model, so never prefixed); its
  // decoder is tied to the word embeddings and its bias is `cls.predictions.bias`.
  head: [
    [`cls.predictions.transform.dense.${P}`, 'maskedLmHead.dense.{param}'],
    [`cls.predictions.transform.LayerNorm.${P}`, 'maskedLmHead.norm.{param}'],
    ['cls.predictions.bias', 'maskedLmHead.bias'],
  ],
  legacy: [
    [/^(?:bert\.)?embeddings\.LayerNorm\.gamma$/, 'embeddings.norm.weight'],
    [/^(?:bert\.)?embeddings\.LayerNorm\.beta$/, 'embeddings.norm.bias'],
    [/^(?:bert\.)?encoder\.layer\.(\d+)\.attention\.output\.LayerNorm\.gamma$/, 'layers.$1.mixerNorm.weight'],
    [/^(?:bert\.)?encoder\.layer\.(\d+)\.attention\.output\.LayerNorm\.beta$/, 'layers.$1.mixerNorm.bias'],
    [/^(?:bert\.)?encoder\.layer\.(\d+)\.output\.LayerNorm\.gamma$/, 'layers.$1.ffnNorm.weight'],
    [/^(?:bert\.)?encoder\.layer\.(\d+)\.output\.LayerNorm\.beta$/, 'layers.$1.ffnNorm.bias'],
    [/^cls\.predictions\.transform\.LayerNorm\.gamma$/, 'maskedLmHead.norm.weight'],
    [/^cls\.predictions\.transform\.LayerNorm\.beta$/, 'maskedLmHead.norm.bias'],
  ],
});

/** HF `BertModel` names -> Tessera paths (the loading direction of {@link bertNames}). */
export const bertHfNames = bertNames.toTessera;

/**
 * What HF loads into no BERT model: buffers, the next-sentence head of a BertForPreTraining
 * checkpoint, and the masked-LM decoder, which is tied to the word embeddings (its bias is
 * `cls.predictions.bias`) and stored only by older checkpoints.
 */
export const bertIgnored = [/(^|\.)position_ids$/, /^cls\.seq_relationship\./, /^cls\.predictions\.decoder\./];

/**
 * What HF does not load into one kind of BERT model: a BertModel (encoder) skips the masked-LM
 * head of a BertForMaskedLM/BertForPreTraining checkpoint; a BertForMaskedLM has no pooler.
 */
export function bertIgnoredForKind(kind: ModelKind): readonly RegExp[] {
  return kind === 'masked-lm' ? [/^(?:bert\.)?pooler\./] : [/^cls\.predictions\./];
}
