/**
 * The hub flags every command that takes MODEL shares. Kept apart from model.ts (which loads the
 * library) so that defining the commands, `--help` and usage errors load no model code.
 */
import type { Command } from 'commander';
import type { HubOptions } from '../index.js';

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

export function hubOptions(flags: HubFlags, progress?: boolean): HubOptions {
  const options: HubOptions = {};
  if (flags.revision !== undefined) options.revision = flags.revision;
  if (flags.cacheDir !== undefined) options.cacheDir = flags.cacheDir;
  if (flags.offline === true) options.offline = true;
  if (progress !== undefined) options.progress = progress;
  return options;
}

/** Start the tfjs backend named by `--backend` (else TESSERA_BACKEND, else the fastest). */
export async function startBackend(cmd: Command): Promise<void> {
  const { backend } = cmd.optsWithGlobals<{ backend?: string }>();
  const { initBackend } = await import('../index.js');
  // initBackend rejects an unknown name, listing the valid ones.
  await initBackend(backend === undefined ? {} : { backend: backend as never });
}
