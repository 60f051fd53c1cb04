/**
 * Child process of bench/llama-cpp.ts: times llama.cpp (through node-llama-cpp, resolved from the
 * folder given as argv[2], which also holds the GGUF files) on one model in several weight types,
 * the way bench/precision.ts times Tessera: prefill of `prefill` tokens (best of 3, fresh
 * sequences), then decode of `newTokens` greedy tokens after a 16-token prompt (best of 5: its
 * threads spin at barriers, and on a 2-core machine any other activity halves a run), 2 threads,
 * CPU only. Prints one JSON line: { [type]: { prefill_tok_s, decode_tok_s } }.
 * usage: node --import tsx bench/llama-cpp-peer.ts DIR MODEL PREFILL NEW_TOKENS VOCAB TYPE...
 */
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { pseudoRandomIds } from './ids.js';

interface Sequence {
  evaluateWithoutGeneratingNewTokens(tokens: number[]): Promise<void>;
  evaluate(tokens: number[], options: { temperature: number }): AsyncIterable<number>;
  dispose(): void;
}
interface LlamaModule {
  getLlama(options: { gpu: false; build: 'never'; logLevel: 'error' }): Promise<{
    loadModel(options: { modelPath: string }): Promise<{
      createContext(options: { contextSize: number; batchSize: number; threads: number }): Promise<{ getSequence(): Sequence; dispose(): Promise<void> }>;
      dispose(): Promise<void>;
    }>;
  }>;
}

const [dir, model, prefillArg, newTokensArg, vocabArg, ...types] = process.argv.slice(2);
if (dir === undefined || model === undefined || types.length === 0) throw new Error('usage: llama-cpp-peer.ts DIR MODEL PREFILL NEW_TOKENS VOCAB TYPE...');
const [prefill, newTokens, vocab] = [Number(prefillArg), Number(newTokensArg), Number(vocabArg)];
// The folder's own node-llama-cpp, not one of ours: it is deliberately not a dependency (~700 MB of GPU builds).
const entry = createRequire(join(dir, 'package.json')).resolve('node-llama-cpp');
const { getLlama } = (await import(pathToFileURL(entry).href)) as LlamaModule;
const llama = await getLlama({ gpu: false, build: 'never', logLevel: 'error' });
const prompt = pseudoRandomIds(prefill, vocab);
const results: Record<string, { prefill_tok_s: number; decode_tok_s: number }> = {};
for (const type of types) {
  const lm = await llama.loadModel({ modelPath: join(dir, `${model}-${type}.gguf`) });
  const ctx = await lm.createContext({ contextSize: prefill + newTokens + 32, batchSize: prefill, threads: 2 });
  let prefillMs = Infinity;
  for (let round = 0; round < 3; round++) {
    const seq = ctx.getSequence();
    const t0 = performance.now();
    await seq.evaluateWithoutGeneratingNewTokens(prompt);
    prefillMs = Math.min(prefillMs, performance.now() - t0);
    seq.dispose();
  }
  let decodeTokS = 0;
  for (let round = 0; round < 5; round++) {
    const seq = ctx.getSequence();
    await seq.evaluateWithoutGeneratingNewTokens(prompt.slice(0, 15));
    let n = 0;
    const t0 = performance.now();
    for await (const token of seq.evaluate([prompt[15]!], { temperature: 0 })) {
      void token;
      if (++n >= newTokens) break;
    }
    decodeTokS = Math.max(decodeTokS, n / ((performance.now() - t0) / 1000));
    seq.dispose();
  }
  results[type] = { prefill_tok_s: prefill / (prefillMs / 1000), decode_tok_s: decodeTokS };
  await ctx.dispose();
  await lm.dispose();
}
console.log(JSON.stringify(results));
