import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import {
  Attention,
  AutoCausalLM,
  FeedForward,
  MambaMixer,
  MixtureOfExperts,
  jamba,
  renameParameter,
  writeSafetensors,
  type TensorToSave,
} from '../../src/index.js';
import { ids } from '../helpers.js';

// A Jamba with experts: 6 layers, attention at 2 and 5 (period 3, offset 2), MoE at 1, 3, 5.
const HF_CONFIG = {
  model_type: 'jamba',
  vocab_size: 64,
  hidden_size: 16,
  intermediate_size: 24,
  num_hidden_layers: 6,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  attn_layer_period: 3,
  attn_layer_offset: 2,
  num_experts: 4,
  num_experts_per_tok: 2,
  expert_layer_period: 2,
  expert_layer_offset: 1,
  mamba_d_state: 4,
  mamba_d_conv: 3,
  mamba_expand: 2,
  mamba_dt_rank: 'auto',
  rms_norm_eps: 1e-6,
};

/** The state_dict names HF's JambaForCausalLM has for HF_CONFIG, written out from its module layout. */
function hfNames(): string[] {
  const names = ['model.embed_tokens.weight', 'model.final_layernorm.weight', 'lm_head.weight'];
  for (let i = 0; i < 6; i++) {
    const p = `model.layers.${i}.`;
    names.push(`${p}input_layernorm.weight`, `${p}pre_ff_layernorm.weight`);
    if (i % 3 === 2) for (const x of ['q', 'k', 'v', 'o']) names.push(`${p}self_attn.${x}_proj.weight`);
    else {
      for (const x of ['in_proj.weight', 'conv1d.weight', 'conv1d.bias', 'x_proj.weight', 'dt_proj.weight', 'dt_proj.bias', 'A_log', 'D', 'out_proj.weight', 'dt_layernorm.weight', 'b_layernorm.weight', 'c_layernorm.weight']) {
        names.push(`${p}mamba.${x}`);
      }
    }
    const proj = ['gate_proj', 'up_proj', 'down_proj'];
    if (i % 2 === 1) {
      names.push(`${p}feed_forward.router.weight`);
      for (let e = 0; e < 4; e++) for (const x of proj) names.push(`${p}feed_forward.experts.${e}.${x}.weight`);
    } else for (const x of proj) names.push(`${p}feed_forward.${x}.weight`);
  }
  return names;
}

describe('Jamba with a mixture of experts', () => {
  it('places attention, Mamba and MoE by the periods and offsets', () => {
    const model = AutoCausalLM.fromConfig(HF_CONFIG);
    const blocks = model.layers.items;
    expect(blocks.map((b) => b.mixer.constructor)).toEqual([MambaMixer, MambaMixer, Attention, MambaMixer, MambaMixer, Attention]);
    expect(blocks.map((b) => b.ffn!.constructor)).toEqual([FeedForward, MixtureOfExperts, FeedForward, MixtureOfExperts, FeedForward, MixtureOfExperts]);
    const moe = blocks[1]!.ffn as MixtureOfExperts;
    expect(moe.options).toMatchObject({ numExperts: 4, topK: 2, intermediateSize: 24, renormalize: false });
    model.dispose();
  });

  it('maps every HF tensor name onto exactly one Tessera parameter', () => {
    const model = AutoCausalLM.fromConfig(HF_CONFIG);
    const renamed = hfNames().map((n) => renameParameter(n, jamba.hfNames));
    expect(renamed).not.toContain(undefined);
    expect(new Set(renamed).size).toBe(renamed.length);
    expect([...renamed].sort()).toEqual(model.namedParameters().map(([n]) => n).sort());
    model.dispose();
  });

  it('loads an HF-named MoE checkpoint into the same outputs', async () => {
    const source = AutoCausalLM.fromConfig(HF_CONFIG);
    const params = new Map(source.namedParameters());
    const tensors = new Map<string, TensorToSave>();
    for (const name of hfNames()) {
      const p = params.get(renameParameter(name, jamba.hfNames)!)!;
      tensors.set(name, { shape: p.shape, data: p.dataSync() as Float32Array });
    }
    const dir = await mkdtemp(join(tmpdir(), 'tessera-jamba-moe-'));
    try {
      await writeFile(join(dir, 'config.json'), JSON.stringify(HF_CONFIG));
      await writeSafetensors(join(dir, 'model.safetensors'), tensors);
      const loaded = await AutoCausalLM.fromDir(dir);
      const input = ids([[3, 9, 27, 17, 51, 1, 2]]);
      const run = (m: typeof loaded): Float32Array => tf.tidy(() => m.forward(input).logits.dataSync() as Float32Array);
      expect(run(loaded)).toEqual(run(source));
      input.dispose();
      loaded.dispose();
    } finally {
      await rm(dir, { recursive: true, force: true });
      source.dispose();
    }
  });

  it('rejects an offset outside its period', () => {
    expect(() => AutoCausalLM.fromConfig({ ...HF_CONFIG, attn_layer_offset: 3 })).toThrow(/'attn_layer_offset' \(3\) must be less than 'attn_layer_period' \(3\)/);
  });
});
