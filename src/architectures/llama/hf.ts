import { nameMap } from '../rename.js';

const P = '{param:weight|bias}';

/** HF `LlamaForCausalLM` / `LlamaModel` names <-> Tessera paths. */
export const llamaNames = nameMap({
  prefix: 'model.',
  base: [
    ['embed_tokens.weight', 'embeddings.word.weight'],
    ['layers.{layer}.input_layernorm.weight', 'layers.{layer}.mixerNorm.weight'],
    [`layers.{layer}.self_attn.q_proj.${P}`, 'layers.{layer}.mixer.query.{param}'],
    [`layers.{layer}.self_attn.k_proj.${P}`, 'layers.{layer}.mixer.key.{param}'],
    [`layers.{layer}.self_attn.v_proj.${P}`, 'layers.{layer}.mixer.value.{param}'],
    [`layers.{layer}.self_attn.o_proj.${P}`, 'layers.{layer}.mixer.output.{param}'],
    ['layers.{layer}.post_attention_layernorm.weight', 'layers.{layer}.ffnNorm.weight'],
    [`layers.{layer}.mlp.{proj:gate|up|down}_proj.${P}`, 'layers.{layer}.ffn.{proj}.{param}'],
    ['norm.weight', 'finalNorm.weight'],
  ],
  head: [['lm_head.weight', 'lmHead.weight']],
});

/** HF names -> Tessera paths (the loading direction of {@link llamaNames}). */
export const llamaHfNames = llamaNames.toTessera;

/** Non-persistent rotary buffers some older checkpoints still carry. */
export const llamaIgnored = [/\.rotary_emb\.inv_freq$/];
