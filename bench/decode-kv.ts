/**
 * Decode with the KV cache appended in place vs copied every token, A/B interleaved in one
 * process: `npx tsx bench/decode-kv.ts [positions...]` (default 512 2048) on Llama-small (random
 * weights). Per position: a prefill, then one cache per arm cloned from it, and single decode
 * steps alternating between the arms (the first of each, which copies in both, is not timed).
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
const ROUNDS = 8;
const STEPS = 8;

const best = (xs: number[]) => Math.min(...xs);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

for (const p of positions.length > 0 ? positions : [512, 2048]) {
  const cache = new GenerationCache();
  const prompt = Array.from({ length: p }, (_, i) => (i * 7919) % 32000);
  lm.generate([prompt], { maxNewTokens: 1, cache });
  const snapshot = cache.snapshot();
  // One cache per arm, from the same snapshot; single steps alternate between them (the first
  // step of each, the copy into a buffer with room, is not timed).
  const times: Record<string, number[]> = { copy: [], inPlace: [] };
  const timed = { copy: cache.clone(), inPlace: cache.clone() };
  for (const arm of ['copy', 'inPlace'] as const) {
    setGrowableKeyValueCaches(arm === 'inPlace');
    lm.generate([[5]], { maxNewTokens: 1, cache: timed[arm] });
  }
  for (let r = 0; r < ROUNDS * STEPS; r++) {
    for (const arm of r % 2 === 0 ? (['copy', 'inPlace'] as const) : (['inPlace', 'copy'] as const)) {
      setGrowableKeyValueCaches(arm === 'inPlace');
      const t0 = performance.now();
      lm.generate([[5]], { maxNewTokens: 1, cache: timed[arm] });
      times[arm]!.push(performance.now() - t0);
    }
  }
  Object.values(timed).forEach((c) => c.dispose());
  // Kernel time (tf.profile) of single steps, interleaved, best of 5: the attention kernels (rotary,
  // cache append, attention) and all kernels; the rest of a step's wall time is JS and tfjs.
  const prof: Record<string, { attn: number[]; kernels: number[]; wall: number[] }> = { copy: { attn: [], kernels: [], wall: [] }, inPlace: { attn: [], kernels: [], wall: [] } };
  for (const arm of ['copy', 'inPlace']) {
    setGrowableKeyValueCaches(arm === 'inPlace');
    cache.restore(snapshot);
    lm.generate([[5]], { maxNewTokens: 1, cache });
  }
  const caches = { copy: cache.clone(), inPlace: cache.clone() };
  for (let r = 0; r < 5; r++) {
    for (const arm of ['copy', 'inPlace'] as const) {
      setGrowableKeyValueCaches(arm === 'inPlace');
      lm.generate([[5]], { maxNewTokens: 1, cache: caches[arm] }); // into a buffer with room
      const t0 = performance.now();
      const info = await tf.profile(() => { lm.generate([[5]], { maxNewTokens: 1, cache: caches[arm] }); });
      prof[arm]!.wall.push(performance.now() - t0);
      prof[arm]!.kernels.push(info.kernels.reduce((a, k) => a + ((k.kernelTimeMs as number) ?? 0), 0));
      prof[arm]!.attn.push(info.kernels.filter((k) => k.name.includes('ttention')).reduce((a, k) => a + ((k.kernelTimeMs as number) ?? 0), 0));
    }
  }
  const split: Record<string, string> = {};
  for (const arm of ['copy', 'inPlace'] as const) {
    const x = prof[arm]!;
    split[arm] = `attention kernels (12 layers) best ${best(x.attn).toFixed(2)} ms, all kernels best ${best(x.kernels).toFixed(2)} ms, profiled wall best ${best(x.wall).toFixed(2)} ms`;
  }
  Object.values(caches).forEach((c) => c.dispose());
  const [c, i] = [times.copy!, times.inPlace!];
  console.log(`position ${p}: ms/token copy best ${best(c).toFixed(2)} median ${median(c).toFixed(2)} | in place best ${best(i).toFixed(2)} median ${median(i).toFixed(2)} | copy/inPlace best ${(best(c) / best(i)).toFixed(3)} median ${(median(c) / median(i)).toFixed(3)}`);
  console.log(`  one step, copy: ${split.copy}`);
  console.log(`  one step, in place: ${split.inPlace}`);
  disposeSnapshot(snapshot);
  cache.dispose();
}
setGrowableKeyValueCaches(true);
