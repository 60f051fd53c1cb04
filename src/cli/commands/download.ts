/**
 * `tessera download MODEL`: a hub model's snapshot (config, weights, tokenizer files) into the
 * Hugging Face cache, with progress on stderr, then its folder on stdout.
 */
import type { Command } from 'commander';
import { hubOptions, withHubFlags, type HubFlags } from '../flags.js';

export function downloadCommand(program: Command): void {
  withHubFlags(
    program
      .command('download')
      .description('download a hub model into the Hugging Face cache and print its snapshot folder')
      .argument('<model>', 'hub model name (org/name)')
      .option('--no-weights', 'only config.json and the tokenizer files')
      .option('--no-progress', 'no progress on stderr')
      .option('--refresh', "ask the hub what the revision points to even when the cache has a complete snapshot"),
  ).action(async (model: string, flags: HubFlags & { weights: boolean; progress: boolean; refresh?: boolean }) => {
    const { snapshotModel } = await import('../../index.js');
    // progress: true reports on stderr whether or not it is a terminal (a bar, or periodic lines).
    const dir = await snapshotModel(model, { ...hubOptions(flags, flags.progress), weights: flags.weights, refresh: flags.refresh === true });
    process.stdout.write(`${dir}\n`);
  });
}
