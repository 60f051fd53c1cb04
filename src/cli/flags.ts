/**
 * The hub flags every command that takes MODEL shares. Kept apart from model.ts (which loads the
 * library) so that defining the commands, `--help` and usage errors load no model code.
 */
import { Option, type Command } from 'commander';
import type { HubOptions, WeightDtype } from '../index.js';

/** The hub flags of a command, as commander parses them. */
export interface HubFlags {
  revision?: string;
  cacheDir?: string;
  offline?: boolean;
}

/** Add `--revision`, `--cache-dir` and `--offline` to a command. */
export function withHubFlags(cmd: Command): Command {
  return cmd
    .option('--revision <rev>', 'branch, tag or commit of a hub model (default: main)')
    .option('--cache-dir <dir>', 'Hugging Face cache root (default: $HF_HUB_CACHE, $HF_HOME/hub, ~/.cache/huggingface/hub)')
    .option('--offline', 'use only the cache, never the network (also HF_HUB_OFFLINE=1)');
}

/**
 * The `dtype` load option's values, listed here rather than imported so that defining the
 * commands loads no library code; `satisfies` and the check below keep it equal to WeightDtype.
 */
const DTYPES = ['float32', 'bfloat16', 'float16', 'int8'] as const satisfies readonly WeightDtype[];
type Missing = Exclude<WeightDtype, (typeof DTYPES)[number]>;
const coversEveryDtype: Missing extends never ? true : Missing = true;
void coversEveryDtype;

/** The `--dtype` flag of a command that loads weights. */
export interface DtypeFlags {
  dtype?: WeightDtype;
}

/** Add `--dtype` (how linear weights are held: docs/precision.md) to a command. */
export function withDtypeFlag(cmd: Command): Command {
  return cmd.addOption(
    new Option('--dtype <dtype>', 'hold the linear weights as this type; packed on the native backend, rounded elsewhere (default: float32)').choices(DTYPES),
  );
}

/** `{ dtype }` when `--dtype` was given, else nothing, for a pipeline's options. */
export function dtypeOption(flags: DtypeFlags): { dtype?: WeightDtype } {
  return flags.dtype === undefined ? {} : { dtype: flags.dtype };
}

export function hubOptions(flags: HubFlags, progress?: boolean): HubOptions {
  const options: HubOptions = {};
  if (flags.revision !== undefined) options.revision = flags.revision;
  if (flags.cacheDir !== undefined) options.cacheDir = flags.cacheDir;
  if (flags.offline === true) options.offline = true;
  if (progress !== undefined) options.progress = progress;
  return options;
}

/**
 * Start the tfjs backend named by `--backend` (else TESSERA_BACKEND, else the fastest), then set
 * `--matmul-precision` when given (an error off the native backend or on a CPU without bf16).
 */
export async function startBackend(cmd: Command): Promise<void> {
  const { backend, matmulPrecision } = cmd.optsWithGlobals<{ backend?: string; matmulPrecision?: 'float32' | 'bfloat16' }>();
  const { initBackend, setMatmulPrecision } = await import('../index.js');
  // initBackend rejects an unknown name, listing the valid ones.
  await initBackend(backend === undefined ? {} : { backend: backend as never });
  if (matmulPrecision !== undefined) setMatmulPrecision(matmulPrecision);
}
