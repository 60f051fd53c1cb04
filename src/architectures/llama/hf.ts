import type { RenameRules } from '../rename.js';

/** HF `LlamaForCausalLM` / `LlamaModel` names -> Tessera paths. */
export const llamaHfNames: RenameRules = [
  [/^(?:model\.)?embed_tokens\.weight$/, 'embeddings.word.weight'],
  [/^(?:model\.)?layers\.(\d+)\.input_layernorm\.weight$/, 'layers.$1.mixerNorm.weight'],
  [/^(?:model\.)?layers\.(\d+)\.self_attn\.q_proj\.(weight|bias)$/, 'layers.$1.mixer.query.$2'],
  [/^(?:model\.)?layers\.(\d+)\.self_attn\.k_proj\.(weight|bias)$/, 'layers.$1.mixer.key.$2'],
  [/^(?:model\.)?layers\.(\d+)\.self_attn\.v_proj\.(weight|bias)$/, 'layers.$1.mixer.value.$2'],
  [/^(?:model\.)?layers\.(\d+)\.self_attn\.o_proj\.(weight|bias)$/, 'layers.$1.mixer.output.$2'],
  [/^(?:model\.)?layers\.(\d+)\.post_attention_layernorm\.weight$/, 'layers.$1.ffnNorm.weight'],
  [/^(?:model\.)?layers\.(\d+)\.mlp\.(gate|up|down)_proj\.(weight|bias)$/, 'layers.$1.ffn.$2.$3'],
  [/^(?:model\.)?norm\.weight$/, 'finalNorm.weight'],
  [/^lm_head\.weight$/, 'lmHead.weight'],
];

/** Non-persistent rotary buffers some older checkpoints still carry. */
export const llamaIgnored = [/\.rotary_emb\.inv_freq$/];
