/**
 * Decode with the KV cache appended in place vs copied every token, A/B interleaved in one
 * process: `npx tsx bench/decode-kv.ts [positions...]` (default 512 2048) on Llama-small (random
 * weights). Per position: a prefill, its snapshot, then rounds that restore it and time single
 * decode steps in each arm (the first step after a restore, which copies in both, is not timed).
 * Also splits one step into kernel time (tf.profile) and the rest (JS and tfjs bookkeeping).
 */
import 'reflect-metadata';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/kernels/backend.js';
import { disposeSnapshot, GenerationCache } from '../src/generation/cache.js';
import { AutoCausalLM } from '../src/loaders/auto.js';
import type { CausalLM } from '../src/models/causal-lm.js';
import { setGrowableKeyValueCaches } from '../src/ops/attention.js';

await initBackend({ backend: 'native' });
const positions = process.argv.slice(2).map(Number);
const cfg = { model_type: 'llama', hidden_size: 768, num_hidden_layers: 12, num_attention_heads: 12, num_key_value_heads: 4, intermediate_size: 2048, vocab_size: 32000 };
const lm = AutoCausalLM.fromConfig(cfg, { seed: 1 }) as CausalLM;
const ROUNDS = 6;
const STEPS = 8;

const best = (xs: number[]) => Math.min(...xs);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

for (const p of positions.length > 0 ? positions : [512, 2048]) {
  const cache = new GenerationCache();
  const prompt = Array.from({ length: p }, (_, i) => (i * 7919) % 32000);
  lm.generate([prompt], { maxNewTokens: 1, cache });
  const snapshot = cache.snapshot();
  const times: Record<string, number[]> = { copy: [], inPlace: [] };
  for (let r = 0; r < ROUNDS; r++) {
    for (const arm of r % 2 === 0 ? ['copy', 'inPlace'] : ['inPlace', 'copy']) {
      setGrowableKeyValueCaches(arm === 'inPlace');
      cache.restore(snapshot);
      lm.generate([[5]], { maxNewTokens: 1, cache }); // the copy into a buffer with room
      for (let s = 0; s < STEPS; s++) {
        const t0 = performance.now();
        lm.generate([[5]], { maxNewTokens: 1, cache });
        times[arm]!.push(performance.now() - t0);
      }
    }
  }
  const split: Record<string, string> = {};
  for (const arm of ['copy', 'inPlace']) {
    setGrowableKeyValueCaches(arm === 'inPlace');
    cache.restore(snapshot);
    lm.generate([[5]], { maxNewTokens: 1, cache });
    lm.generate([[5]], { maxNewTokens: 1, cache });
    const t0 = performance.now();
    const info = await tf.profile(() => { lm.generate([[5]], { maxNewTokens: 1, cache }); });
    const wall = performance.now() - t0;
    const kernels = info.kernels.reduce((a, k) => a + ((k.kernelTimeMs as number) ?? 0), 0);
    const attn = info.kernels.filter((k) => k.name.includes('ttention')).reduce((a, k) => a + ((k.kernelTimeMs as number) ?? 0), 0);
    split[arm] = `${info.kernels.length} kernels, kernel ${kernels.toFixed(2)} ms (attention ${attn.toFixed(2)}), profiled wall ${wall.toFixed(2)} ms`;
  }
  const [c, i] = [times.copy!, times.inPlace!];
  console.log(`position ${p}: ms/token copy best ${best(c).toFixed(2)} median ${median(c).toFixed(2)} | in place best ${best(i).toFixed(2)} median ${median(i).toFixed(2)} | copy/inPlace best ${(best(c) / best(i)).toFixed(3)} median ${(median(c) / median(i)).toFixed(3)}`);
  console.log(`  one step, copy: ${split.copy}`);
  console.log(`  one step, in place: ${split.inPlace}`);
  disposeSnapshot(snapshot);
  cache.dispose();
}
setGrowableKeyValueCaches(true);
