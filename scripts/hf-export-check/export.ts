/**
 * Half of the check that Hugging Face transformers loads Tessera's HF exports (docs/export.md):
 * exports random Llama, Mamba, Jamba and BERT models and the bert-mlm-tiny fixture to
 * `<out>/<name>` and writes their outputs on one input to `<out>/outputs.json`; `check.py` loads
 * each into its transformers class and compares. Needs Python with torch and transformers, so it
 * is not part of `npm test`:
 *
 *   npx tsx scripts/hf-export-check/export.ts /tmp/hf-export && python3 scripts/hf-export-check/check.py /tmp/hf-export
 */
import 'reflect-metadata';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { AutoCausalLM, AutoEncoder, AutoMaskedLM, disposeOutput, initBackend, saveModel, type CausalLM, type EncoderModel, type MaskedLM } from '../../src/index.js';

const out = process.argv[2];
if (out === undefined) throw new Error('usage: export.ts OUTPUT_DIR');
await initBackend({ backend: 'wasm' });
const ids = [[2, 17, 42, 5, 30, 7, 3, 9]];
const configs: [string, Record<string, unknown>][] = [
  ['llama', { model_type: 'llama', vocab_size: 64, hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, intermediate_size: 48 }],
  ['mamba', { model_type: 'mamba', vocab_size: 64, hidden_size: 32, num_hidden_layers: 2, state_size: 8, expand: 2 }],
  ['jamba', { model_type: 'jamba', vocab_size: 64, hidden_size: 32, num_hidden_layers: 4, num_attention_heads: 4, num_key_value_heads: 2, intermediate_size: 48, attn_layer_period: 2, attn_layer_offset: 1, expert_layer_period: 2, expert_layer_offset: 1, num_experts: 4, num_experts_per_tok: 2, mamba_d_state: 8, mamba_expand: 2, mamba_dt_rank: 4, use_mamba_kernels: false }],
  ['bert', { model_type: 'bert', vocab_size: 64, hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 4, intermediate_size: 48, max_position_embeddings: 64 }],
];
const models: [string, CausalLM | EncoderModel | MaskedLM][] = configs.map(([name, cfg]) => [name, name === 'bert' ? AutoEncoder.fromConfig(cfg, { seed: 3 }) : AutoCausalLM.fromConfig(cfg, { seed: 3 })]);
models.push(['bert-mlm', await AutoMaskedLM.fromDir(join(import.meta.dirname, '../../tests/fixtures/bert-mlm-tiny'))]);
const outputs: Record<string, number[]> = {};
for (const [name, model] of models) {
  await saveModel(model, join(out, name), { format: 'hf', overwrite: true, tokenizer: false });
  const input = tf.tensor2d(ids, undefined, 'int32');
  const result = model.forward(input) as unknown as Record<string, tf.Tensor>;
  outputs[name] = Array.from((result.logits ?? result.lastHiddenState)!.dataSync());
  disposeOutput(result as never);
  input.dispose();
  model.dispose();
}
writeFileSync(join(out, 'outputs.json'), JSON.stringify({ ids, outputs }));
console.log(`exported ${models.length} models to ${out}`);
