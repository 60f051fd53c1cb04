import type { RenameRules } from '../rename.js';

const L = String.raw`^(?:model\.)?layers\.(\d+)\.`;

/** HF `JambaForCausalLM` / `JambaModel` names -> Tessera paths. */
export const jambaHfNames: RenameRules = [
  [/^(?:model\.)?embed_tokens\.weight$/, 'embeddings.word.weight'],
  [new RegExp(`${L}input_layernorm\\.weight$`), 'layers.$1.mixerNorm.weight'],
  [new RegExp(`${L}pre_ff_layernorm\\.weight$`), 'layers.$1.ffnNorm.weight'],
  [new RegExp(`${L}self_attn\\.q_proj\\.weight$`), 'layers.$1.mixer.query.weight'],
  [new RegExp(`${L}self_attn\\.k_proj\\.weight$`), 'layers.$1.mixer.key.weight'],
  [new RegExp(`${L}self_attn\\.v_proj\\.weight$`), 'layers.$1.mixer.value.weight'],
  [new RegExp(`${L}self_attn\\.o_proj\\.weight$`), 'layers.$1.mixer.output.weight'],
  [new RegExp(`${L}mamba\\.in_proj\\.(weight|bias)$`), 'layers.$1.mixer.inProj.$2'],
  [new RegExp(`${L}mamba\\.conv1d\\.weight$`), 'layers.$1.mixer.convWeight'],
  [new RegExp(`${L}mamba\\.conv1d\\.bias$`), 'layers.$1.mixer.convBias'],
  [new RegExp(`${L}mamba\\.x_proj\\.weight$`), 'layers.$1.mixer.xProj.weight'],
  [new RegExp(`${L}mamba\\.dt_proj\\.(weight|bias)$`), 'layers.$1.mixer.dtProj.$2'],
  [new RegExp(`${L}mamba\\.out_proj\\.(weight|bias)$`), 'layers.$1.mixer.outProj.$2'],
  [new RegExp(`${L}mamba\\.(A_log|D)$`), 'layers.$1.mixer.$2'],
  [new RegExp(`${L}mamba\\.dt_layernorm\\.weight$`), 'layers.$1.mixer.dtNorm.weight'],
  [new RegExp(`${L}mamba\\.b_layernorm\\.weight$`), 'layers.$1.mixer.bNorm.weight'],
  [new RegExp(`${L}mamba\\.c_layernorm\\.weight$`), 'layers.$1.mixer.cNorm.weight'],
  // Dense layers: feed_forward.{gate,up,down}_proj; MoE layers: a router and experts.E.*.
  [new RegExp(`${L}feed_forward\\.(gate|up|down)_proj\\.weight$`), 'layers.$1.ffn.$2.weight'],
  [new RegExp(`${L}feed_forward\\.router\\.weight$`), 'layers.$1.ffn.router.weight'],
  [new RegExp(`${L}feed_forward\\.experts\\.(\\d+)\\.(gate|up|down)_proj\\.weight$`), 'layers.$1.ffn.experts.$2.$3.weight'],
  [/^(?:model\.)?final_layernorm\.weight$/, 'finalNorm.weight'],
  [/^lm_head\.weight$/, 'lmHead.weight'],
];
