/**
 * `tessera embed MODEL TEXT...`: one vector per text from an encoder (BERT) through the
 * feature-extraction pipeline: mean- or first-token pooled, optionally L2-normalised.
 */
import type { Command } from 'commander';
import { Option } from 'commander';
import { dtypeOption, hubOptions, startBackend, withDtypeFlag, withHubFlags, type DtypeFlags, type HubFlags } from '../flags.js';
import { positiveInt } from '../parse.js';

interface EmbedFlags extends HubFlags, DtypeFlags {
  pooling: 'mean' | 'cls';
  normalize?: boolean;
  json?: boolean;
  batchSize?: number;
}

export function embedCommand(program: Command): void {
  withDtypeFlag(withHubFlags(
    program
      .command('embed')
      .description('print one embedding (a JSON array) per text')
      .argument('<model>', 'encoder (BERT) folder or hub name (org/name), with tokenizer files')
      .argument('<text...>', 'the texts to embed')
      .addOption(new Option('--pooling <how>', 'mean over the tokens, or the first ([CLS]) token').choices(['mean', 'cls']).default('mean'))
      .option('--normalize', 'scale each embedding to unit length')
      .option('--batch-size <n>', 'texts run through the model at once', positiveInt)
      .option('--json', 'print one JSON document { model, pooling, normalize, embeddings } instead of one array per line'),
  )).action(async (model: string, texts: string[], flags: EmbedFlags, cmd: Command) => {
    await startBackend(cmd);
    const { loadFeatureExtractionPipeline } = await import('../../index.js');
    const extract = await loadFeatureExtractionPipeline(model, { ...hubOptions(flags), ...dtypeOption(flags) });
    let embeddings: number[][];
    try {
      embeddings = await extract(texts, { pooling: flags.pooling, normalize: flags.normalize === true, ...(flags.batchSize !== undefined ? { batchSize: flags.batchSize } : {}) });
    } finally {
      extract.dispose();
    }
    if (flags.json === true) {
      process.stdout.write(`${JSON.stringify({ model, pooling: flags.pooling, normalize: flags.normalize === true, embeddings })}\n`);
    } else {
      for (const e of embeddings) process.stdout.write(`${JSON.stringify(e)}\n`);
    }
  });
}
