import { nameMap } from '../rename.js';

const P = '{param:weight|bias}';

/** HF `MambaForCausalLM` / `MambaModel` names <-> Tessera paths; also reads the original state-spaces names. */
export const mambaNames = nameMap({
  prefix: 'backbone.',
  base: [
    ['embeddings.weight', 'embeddings.word.weight'],
    ['layers.{layer}.norm.weight', 'layers.{layer}.mixerNorm.weight'],
    [`layers.{layer}.mixer.in_proj.${P}`, 'layers.{layer}.mixer.inProj.{param}'],
    ['layers.{layer}.mixer.conv1d.weight', 'layers.{layer}.mixer.convWeight'],
    ['layers.{layer}.mixer.conv1d.bias', 'layers.{layer}.mixer.convBias'],
    ['layers.{layer}.mixer.x_proj.weight', 'layers.{layer}.mixer.xProj.weight'],
    [`layers.{layer}.mixer.dt_proj.${P}`, 'layers.{layer}.mixer.dtProj.{param}'],
    [`layers.{layer}.mixer.out_proj.${P}`, 'layers.{layer}.mixer.outProj.{param}'],
    ['layers.{layer}.mixer.{ssm:A_log|D}', 'layers.{layer}.mixer.{ssm}'],
    ['norm_f.weight', 'finalNorm.weight'],
  ],
  head: [['lm_head.weight', 'lmHead.weight']],
  // state-spaces checkpoints say `embedding`; HF renames it on load the same way.
  legacy: [[/^(?:backbone\.)?embedding\.weight$/, 'embeddings.word.weight']],
});

/** HF names -> Tessera paths (the loading direction of {@link mambaNames}). */
export const mambaHfNames = mambaNames.toTessera;
