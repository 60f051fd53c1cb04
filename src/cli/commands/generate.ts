/**
 * `tessera generate MODEL PROMPT`: continue a prompt with a causal LM and stream the new text to
 * stdout as it is produced (the prompt itself is not echoed).
 */
import type { Command } from 'commander';
import { AutoTokenizer, DEFAULT_MAX_NEW_TOKENS, stream, type CausalLM, type Strategy } from '../../index.js';
import { collect, integer, positiveInt, positiveNumber, probability } from '../parse.js';
import { loadModel, modelFolder, startBackend, withHubFlags, type HubFlags } from '../model.js';

interface GenerateFlags extends HubFlags {
  maxNewTokens: number;
  temperature?: number;
  topK?: number;
  topP?: number;
  seed?: number;
  stop?: string[];
}

/** Greedy unless a sampling flag is given. */
function strategyOf(flags: GenerateFlags): Strategy {
  const sampling = [flags.temperature, flags.topK, flags.topP, flags.seed].some((v) => v !== undefined);
  if (!sampling) return 'greedy';
  return { kind: 'sample', temperature: flags.temperature, topK: flags.topK, topP: flags.topP, seed: flags.seed };
}

/** config.json's end-of-sequence id(s), which end generation as in transformers. */
function eosOf(raw: Record<string, unknown>): number | number[] | undefined {
  const eos = raw.eos_token_id;
  if (typeof eos === 'number') return eos;
  if (Array.isArray(eos) && eos.every((e) => typeof e === 'number')) return eos as number[];
  return undefined;
}

/**
 * Where the text is cut: the first stop string's start, searching only where one could begin
 * given what was already printed (a printed part can no longer be taken back).
 */
function stopIndex(text: string, stops: readonly string[], printed: number): number {
  let cut = -1;
  for (const s of stops) {
    const i = text.indexOf(s, Math.max(0, printed - s.length + 1));
    if (i >= 0 && (cut < 0 || i < cut)) cut = i;
  }
  return cut;
}

export function generateCommand(program: Command): void {
  withHubFlags(
    program
      .command('generate')
      .description('continue a prompt with a causal language model, streaming the new text to stdout')
      .argument('<model>', 'model folder or hub name (org/name), with tokenizer files')
      .argument('<prompt>', 'the text to continue')
      .option('-n, --max-new-tokens <n>', 'most tokens to add', positiveInt, DEFAULT_MAX_NEW_TOKENS)
      .option('--temperature <t>', 'sample with this temperature (> 0); without any sampling flag, greedy', positiveNumber)
      .option('--top-k <k>', 'sample from the k most likely tokens', positiveInt)
      .option('--top-p <p>', 'sample from the smallest set of tokens whose probability reaches p', probability)
      .option('--seed <s>', 'seed of the sampling, for reproducible text', integer)
      .option('--stop <text>', 'end where this text appears, leaving it out (repeatable)', collect),
  ).action(async (model: string, prompt: string, flags: GenerateFlags, cmd: Command) => {
    const folder = await modelFolder(model, flags, { weights: true, tokenizer: true });
    await startBackend(cmd);
    const tokenizer = await AutoTokenizer.fromDir(folder);
    const loaded = await loadModel(folder, ['causal-lm']);
    const lm = loaded.model as CausalLM;
    try {
      const encoded = tokenizer.encode([prompt], { padding: false });
      encoded.inputIds.dispose();
      encoded.attentionMask.dispose();
      encoded.tokenTypeIds.dispose();
      const stops = flags.stop ?? [];
      const tokens: number[] = [];
      let printed = '';
      const events = stream(lm, encoded.ids, { maxNewTokens: flags.maxNewTokens, eosTokenId: eosOf(loaded.raw), strategy: strategyOf(flags) });
      for await (const event of events) {
        tokens.push(event.token);
        // Decode everything so far: a character may span tokens, and detokenizers join pieces.
        const text = tokenizer.decode(tokens, { skipSpecialTokens: true });
        if (text.endsWith('\uFFFD') && !event.done) continue; // half of a multi-byte character
        const cut = stopIndex(text, stops, printed.length);
        const shown = cut >= 0 ? text.slice(0, cut) : text;
        if (shown.length > printed.length) process.stdout.write(shown.slice(printed.length));
        printed = shown;
        if (cut >= 0) break; // leaving the loop frees the generation cache
      }
      process.stdout.write('\n');
    } finally {
      lm.dispose();
    }
  });
}
