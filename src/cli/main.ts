/**
 * The `tessera` command line (bin/tessera.js runs {@link main}). Commands live in commands/, one
 * file each; this file wires them into commander and turns every failure into one line on
 * stderr: exit 1 for a failed command, 2 for a usage error, a stack only with --verbose or
 * TESSERA_DEBUG. The library is imported inside the commands' actions, so `--help` and usage
 * errors answer without loading tfjs and the models.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { distillCommand } from './commands/distill.js';
import { downloadCommand } from './commands/download.js';
import { embedCommand } from './commands/embed.js';
import { exportCommand } from './commands/export.js';
import { generateCommand } from './commands/generate.js';
import { inspectCommand } from './commands/inspect.js';
import { errorLine } from './errors.js';

/** Exit status of a command line the CLI could not parse (unknown option, missing argument). */
export const USAGE_EXIT = 2;

/** package.json sits two folders up from both src/cli/main.ts and dist/cli/main.js. */
function packageVersion(): string {
  return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

/** The program with every command. */
export function buildProgram(): Command {
  const program = new Command('tessera')
    .description('Compose, inspect, run and distil neural networks (BERT, Llama, Mamba, Jamba, hybrids)')
    .version(packageVersion(), '-V, --version')
    .option('--verbose', 'print the stack of an error (also TESSERA_DEBUG=1)')
    .option('--backend <name>', 'tfjs backend, e.g. wasm or native (default: TESSERA_BACKEND, else the fastest that starts)')
    .addOption(
      new Option('--matmul-precision <precision>', 'bfloat16: large products in bf16 with float32 sums, native backend only (docs/precision.md)').choices(['float32', 'bfloat16']),
    )
    .showSuggestionAfterError(true)
    // Throw instead of exiting, so main() decides the status and tests can run it in-process.
    .exitOverride()
    .configureOutput({
      // commander's messages start with 'error: '; ours are 'tessera: ...', one line.
      outputError: (message, write) => write(`${errorLine(message.replace(/^error: /, '').trim())} (see --help)\n`),
    });
  for (const add of [generateCommand, embedCommand, inspectCommand, downloadCommand, distillCommand, exportCommand]) add(program);
  return program;
}

function debugging(argv: readonly string[]): boolean {
  return argv.includes('--verbose') || ['1', 'true', 'yes', 'on'].includes((process.env.TESSERA_DEBUG ?? '').toLowerCase());
}

/** Run the CLI on `argv` (without `node` and the script); resolves to the exit status. */
export async function main(argv: readonly string[]): Promise<number> {
  const program = buildProgram();
  if (argv.length === 0) {
    program.outputHelp({ error: true });
    return USAGE_EXIT;
  }
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version are 'errors' to commander; the message was already printed.
      if (err.exitCode === 0) return 0;
      return USAGE_EXIT;
    }
    process.stderr.write(`${errorLine(err)}\n`);
    if (debugging(argv) && err instanceof Error && err.stack !== undefined) process.stderr.write(`${err.stack}\n`);
    return 1;
  } finally {
    // For tests of the built binary: every command frees what it allocated, failing or not.
    // (engine().state is read without starting a backend, which tf.memory() would do.)
    if (process.env.TESSERA_REPORT_TENSORS === '1') {
      const tf = await import('@tensorflow/tfjs-core');
      process.stderr.write(`tessera: tensors left ${tf.engine().state.numTensors}\n`);
    }
  }
}
