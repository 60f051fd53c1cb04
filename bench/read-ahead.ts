/**
 * Decode with the native thread pool's read-ahead off and on (native/src/parallel.c), alternated
 * in one process so both see the same machine: `npx tsx bench/read-ahead.ts [llama|mamba]
 * [dtype,...]` (default llama, float32,bfloat16,int8). Per dtype: 6 rounds per mode, each the best
 * of 2 × 48 tokens after a 16-token prompt; prints the median ms/token of each mode. The last
 * line is JSON.
 */
import 'reflect-metadata';
import { initBackend } from '../src/kernels/backend.js';
import { loadAddon } from '../src/kernels/native/addon.js';
import { GenerationCache } from '../src/generation/cache.js';
import { AutoCausalLM } from '../src/loaders/auto.js';
import type { WeightDtype } from '../src/ops/packed-weights.js';
import { pseudoRandomIds } from './ids.js';

const CONFIGS = {
  llama: { model_type: 'llama', hidden_size: 768, num_hidden_layers: 12, num_attention_heads: 12, num_key_value_heads: 4, intermediate_size: 2048, vocab_size: 32000 },
  mamba: { model_type: 'mamba', hidden_size: 768, num_hidden_layers: 24, state_size: 16, expand: 2, vocab_size: 50280 },
};
const arch = (process.argv[2] ?? 'llama') as keyof typeof CONFIGS;
if (!(arch in CONFIGS)) throw new Error(`bench/read-ahead.ts: unknown model '${arch}' (llama or mamba)`);
const dtypes = (process.argv[3] ?? 'float32,bfloat16,int8').split(',') as WeightDtype[];

await initBackend({ backend: 'native' });
const addon = loadAddon();
const config = CONFIGS[arch];
const median = (v: number[]) => [...v].sort((a, b) => a - b)[v.length >> 1]!;
const results: Record<string, { off: number; on: number }> = {};
for (const dtype of dtypes) {
  const lm = AutoCausalLM.fromConfig(config, { seed: 1, dtype });
  const prompt = pseudoRandomIds(16, config.vocab_size);
  lm.generate([prompt.slice(0, 8)], { maxNewTokens: 2 }); // warm up
  const samples = { off: [] as number[], on: [] as number[] };
  for (let round = 0; round < 6; round++) {
    for (const mode of ['off', 'on'] as const) {
      addon.setReadAhead(mode === 'on');
      let best = Infinity;
      for (let run = 0; run < 2; run++) {
        const cache = new GenerationCache();
        lm.generate([prompt], { maxNewTokens: 1, cache });
        const t0 = performance.now();
        lm.generate([[prompt[0]!]], { maxNewTokens: 48, cache });
        best = Math.min(best, (performance.now() - t0) / 48);
        cache.dispose();
      }
      samples[mode].push(best);
    }
  }
  addon.setReadAhead(true);
  lm.dispose();
  results[dtype] = { off: median(samples.off), on: median(samples.on) };
  console.log(`${arch} ${dtype}: read-ahead off ${results[dtype].off.toFixed(3)} ms/token, on ${results[dtype].on.toFixed(3)}`);
}
console.log(JSON.stringify({ model: arch, ms_per_token: results }));
