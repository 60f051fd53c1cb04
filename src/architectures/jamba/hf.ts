import { nameMap } from '../rename.js';

const L = 'layers.{layer}';
const P = '{param:weight|bias}';

/** HF `JambaForCausalLM` / `JambaModel` names <-> Tessera paths. */
export const jambaNames = nameMap({
  prefix: 'model.',
  base: [
    ['embed_tokens.weight', 'embeddings.word.weight'],
    [`${L}.input_layernorm.weight`, `${L}.mixerNorm.weight`],
    [`${L}.pre_ff_layernorm.weight`, `${L}.ffnNorm.weight`],
    [`${L}.self_attn.q_proj.weight`, `${L}.mixer.query.weight`],
    [`${L}.self_attn.k_proj.weight`, `${L}.mixer.key.weight`],
    [`${L}.self_attn.v_proj.weight`, `${L}.mixer.value.weight`],
    [`${L}.self_attn.o_proj.weight`, `${L}.mixer.output.weight`],
    [`${L}.mamba.in_proj.${P}`, `${L}.mixer.inProj.{param}`],
    [`${L}.mamba.conv1d.weight`, `${L}.mixer.convWeight`],
    [`${L}.mamba.conv1d.bias`, `${L}.mixer.convBias`],
    [`${L}.mamba.x_proj.weight`, `${L}.mixer.xProj.weight`],
    [`${L}.mamba.dt_proj.${P}`, `${L}.mixer.dtProj.{param}`],
    [`${L}.mamba.out_proj.${P}`, `${L}.mixer.outProj.{param}`],
    [`${L}.mamba.{ssm:A_log|D}`, `${L}.mixer.{ssm}`],
    [`${L}.mamba.{norm:dt|b|c}_layernorm.weight`, `${L}.mixer.{norm}Norm.weight`],
    // Dense layers: feed_forward.{gate,up,down}_proj; MoE layers: a router and experts.E.*.
    [`${L}.feed_forward.{proj:gate|up|down}_proj.weight`, `${L}.ffn.{proj}.weight`],
    [`${L}.feed_forward.router.weight`, `${L}.ffn.router.weight`],
    [`${L}.feed_forward.experts.{expert}.{proj:gate|up|down}_proj.weight`, `${L}.ffn.experts.{expert}.{proj}.weight`],
    ['final_layernorm.weight', 'finalNorm.weight'],
  ],
  head: [['lm_head.weight', 'lmHead.weight']],
});

/** HF names -> Tessera paths (the loading direction of {@link jambaNames}). */
export const jambaHfNames = jambaNames.toTessera;
