/** `tessera export MODEL DIR`: save a model in Hugging Face's format or as a Tessera checkpoint. */
import { existsSync, readdirSync } from 'node:fs';
import type { Command } from 'commander';
import { Option } from 'commander';
import type { SaveFormat } from '../../index.js';
import { CliError } from '../errors.js';
import { startBackend, withHubFlags, type HubFlags } from '../flags.js';

export function exportCommand(program: Command): void {
  withHubFlags(
    program
      .command('export')
      .description('save a model (folder or hub name) in Hugging Face\'s format or as a Tessera checkpoint')
      .argument('<model>', 'model folder or hub name (org/name)')
      .argument('<dir>', 'output folder')
      .addOption(new Option('--format <format>', 'hf: HF config and weight names; tessera: Tessera checkpoint').choices(['hf', 'tessera']).default('hf'))
      .option('--overwrite', 'hf format: write into a folder that already has files'),
  ).action(async (model: string, dir: string, flags: HubFlags & { format: SaveFormat; overwrite?: boolean }, cmd: Command) => {
    if (flags.format === 'hf' && flags.overwrite !== true && existsSync(dir) && readdirSync(dir).length > 0) {
      throw new CliError(`'${dir}' is not empty; choose another folder or pass --overwrite`);
    }
    const { loadModel, modelFolder } = await import('../model.js');
    const { saveModel } = await import('../../index.js');
    const folder = await modelFolder(model, flags, { weights: true, tokenizer: true });
    await startBackend(cmd);
    const { model: loaded } = await loadModel(folder);
    try {
      await saveModel(loaded, dir, flags.format === 'hf' ? { format: 'hf', overwrite: flags.overwrite === true } : { format: 'tessera' });
    } finally {
      loaded.dispose();
    }
    process.stdout.write(`${dir}\n`);
  });
}
