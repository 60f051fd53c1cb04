/**
 * `tessera generate MODEL PROMPT`: continue a prompt with a causal LM through the text-generation
 * pipeline and stream the new text to stdout as it is produced (the prompt is not echoed).
 */
import type { Command } from 'commander';
import type { TextGenerateOptions } from '../../index.js';
import { collect, integer, positiveInt, positiveNumber, probability } from '../parse.js';
import { dtypeOption, hubOptions, startBackend, withDtypeFlag, withHubFlags, type DtypeFlags, type HubFlags } from '../flags.js';

interface GenerateFlags extends HubFlags, DtypeFlags {
  maxNewTokens?: number;
  sample?: boolean;
  temperature?: number;
  topK?: number;
  topP?: number;
  seed?: number;
  stop?: string[];
}

/** The flags as text-generation options; those not given come from the model's generation config. */
function generateOptions(flags: GenerateFlags): TextGenerateOptions {
  const options: TextGenerateOptions = {};
  if (flags.maxNewTokens !== undefined) options.maxNewTokens = flags.maxNewTokens;
  if (flags.sample === true || [flags.temperature, flags.topK, flags.topP].some((v) => v !== undefined)) {
    options.strategy = { kind: 'sample', temperature: flags.temperature, topK: flags.topK, topP: flags.topP };
  }
  if (flags.seed !== undefined) options.seed = flags.seed;
  if (flags.stop !== undefined) options.stop = flags.stop;
  return options;
}

export function generateCommand(program: Command): void {
  withDtypeFlag(withHubFlags(
    program
      .command('generate')
      .description('continue a prompt with a causal language model, streaming the new text to stdout')
      .argument('<model>', 'model folder or hub name (org/name), with tokenizer files')
      .argument('<prompt>', 'the text to continue')
      .option('-n, --max-new-tokens <n>', "most tokens to add (default: the model's generation config, else 20)", positiveInt)
      .option('--sample', "sample instead of the model's default strategy (greedy unless its generation config says otherwise)")
      .option('--temperature <t>', 'sample with this temperature (> 0)', positiveNumber)
      .option('--top-k <k>', 'sample from the k most likely tokens', positiveInt)
      .option('--top-p <p>', 'sample from the smallest set of tokens whose probability reaches p', probability)
      .option('--seed <s>', 'seed of the sampling, for reproducible text', integer)
      .option('--stop <text>', 'end where this text appears, leaving it out (repeatable)', collect),
  )).action(async (model: string, prompt: string, flags: GenerateFlags, cmd: Command) => {
    await startBackend(cmd);
    const { loadTextGenerationPipeline } = await import('../../index.js');
    const pipe = await loadTextGenerationPipeline(model, { ...hubOptions(flags), ...dtypeOption(flags) });
    try {
      for await (const piece of pipe.stream(prompt, generateOptions(flags))) process.stdout.write(piece);
      process.stdout.write('\n');
    } finally {
      pipe.dispose();
    }
  });
}
