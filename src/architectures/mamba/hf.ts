import type { RenameRules } from '../rename.js';

/** HF `MambaForCausalLM` names (and the original state-spaces names) -> Tessera paths. */
export const mambaHfNames: RenameRules = [
  // state-spaces checkpoints say `embedding`; HF renames it on load the same way.
  [/^(?:backbone\.)?embeddings?\.weight$/, 'embeddings.word.weight'],
  [/^(?:backbone\.)?layers\.(\d+)\.norm\.weight$/, 'layers.$1.mixerNorm.weight'],
  [/^(?:backbone\.)?layers\.(\d+)\.mixer\.in_proj\.(weight|bias)$/, 'layers.$1.mixer.inProj.$2'],
  [/^(?:backbone\.)?layers\.(\d+)\.mixer\.conv1d\.weight$/, 'layers.$1.mixer.convWeight'],
  [/^(?:backbone\.)?layers\.(\d+)\.mixer\.conv1d\.bias$/, 'layers.$1.mixer.convBias'],
  [/^(?:backbone\.)?layers\.(\d+)\.mixer\.x_proj\.weight$/, 'layers.$1.mixer.xProj.weight'],
  [/^(?:backbone\.)?layers\.(\d+)\.mixer\.dt_proj\.(weight|bias)$/, 'layers.$1.mixer.dtProj.$2'],
  [/^(?:backbone\.)?layers\.(\d+)\.mixer\.out_proj\.(weight|bias)$/, 'layers.$1.mixer.outProj.$2'],
  [/^(?:backbone\.)?layers\.(\d+)\.mixer\.(A_log|D)$/, 'layers.$1.mixer.$2'],
  [/^(?:backbone\.)?norm_f\.weight$/, 'finalNorm.weight'],
  [/^lm_head\.weight$/, 'lmHead.weight'],
];
