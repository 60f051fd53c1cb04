import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { HYBRID_MODEL_TYPE } from '../architectures/hybrid/config.js';
import { describeModel } from '../architectures/hybrid/describe.js';
import type { TransformerModel } from '../models/transformer.js';
import { MaskedLM } from '../models/masked-lm.js';
import { generationConfigFile, hfModelFiles, tokenizerFiles, type ExportFile } from './export-hf.js';
import { sourceOf } from './model-source.js';
import { serializeSafetensors, type TensorToSave } from './safetensors.js';
import type { AutoTokenizer } from './tokenizer.js';
import { checkKeys, type KeyList } from '../util/options.js';

/** The formats {@link saveModel} writes. */
export type SaveFormat = 'tessera' | 'hf';

/** Options of {@link saveModel}. */
export interface SaveOptions {
  /**
   * `'tessera'` (the default): Tessera's own checkpoint, any model. `'hf'`: Hugging Face's format,
   * for architectures that declare an export (BERT, Llama, Mamba, Jamba) and hybrids whose layers
   * are exactly Jamba's.
   */
  format?: SaveFormat;
  /**
   * `format: 'hf'` only: write into a folder that already has files (same-named files are
   * replaced, others left). Without it, an existing non-empty folder is refused.
   */
  overwrite?: boolean;
  /**
   * `format: 'hf'` only: where the tokenizer files (`tokenizer.json`, `vocab.txt`, ...) come
   * from: this tokenizer's folder, or this folder. By default, the folder the model was loaded
   * from by `fromDir`/`fromHfHub`/`fromPretrained`, if it has any; `false` copies none.
   */
  tokenizer?: AutoTokenizer | string | false;
}

const SAVE_OPTION_KEYS = { format: true, overwrite: true, tokenizer: true } satisfies KeyList<SaveOptions>;

/**
 * Save a model. By default as a Tessera checkpoint: `config.json` is its {@link describeModel}
 * hybrid config with `model_type: "tessera-hybrid"` (plus `source_architecture`, for
 * information), and `model.safetensors` holds every parameter in float32 under its Tessera path;
 * any model saves this way, and `AutoCausalLM.fromDir(dir)` (or AutoEncoder/AutoDecoder)
 * rebuilds the same blocks with bit-identical outputs.
 *
 * With `{ format: 'hf' }`, in Hugging Face's format instead: `config.json` in HF's keys and
 * `model.safetensors` under HF's names, as `save_pretrained` writes them (a tied LM head is not
 * stored), so transformers' `from_pretrained` and Tessera's `fromDir` both load it; plus the
 * tokenizer's files (from `options.tokenizer`, else from the folder the model was loaded from),
 * the `generation_config.json` of the folder the model was loaded from, if it has one, and, for a model loaded from an HF folder of its architecture, that config's special token
 * ids. A hybrid whose layers are exactly Jamba's is written as Jamba; other models without an HF
 * counterpart (other hybrids, architectures without `hfExport`) throw {@link HfExportError}
 * naming why.
 *
 * Every file is written under a temporary name in `dir` and renamed into place once all are
 * written, so a failed save never leaves a partial file under a final name.
 */
export async function saveModel(model: TransformerModel, dir: string, options: SaveOptions = {}): Promise<void> {
  model.assertNotDisposed('save');
  checkKeys(options, SAVE_OPTION_KEYS, 'saveModel options');
  const format = options.format ?? 'tessera';
  if (format !== 'tessera' && format !== 'hf') throw new Error(`saveModel: format must be 'tessera' or 'hf', got ${JSON.stringify(format)}`);
  if (format === 'tessera') {
    if (model instanceof MaskedLM) {
      // Hybrid configs describe encoders, decoders and causal LMs; they have no masked-LM head.
      throw new Error(
        `saveModel: ${model.label} is a masked LM, which Tessera's own format cannot describe (its hybrid configs have no masked-LM head); ` +
          "save it with { format: 'hf' } (BertForMaskedLM), which AutoMaskedLM.fromDir loads back bit-identically",
      );
    }
    await writeFilesAtomically(dir, tesseraFiles(model));
    return;
  }
  if (!options.overwrite) await refuseNonEmpty(dir);
  const files = hfModelFiles(model);
  const source = sourceOf(model);
  // Generation defaults belong to the checkpoint, as in save_pretrained, whatever the tokenizer's source.
  if (source !== undefined) files.push(...(await generationConfigFile(source.dir)));
  if (options.tokenizer === undefined) {
    if (source !== undefined) files.push(...(await tokenizerFiles(source.dir, false)));
  } else if (options.tokenizer !== false) {
    files.push(...(await tokenizerFiles(options.tokenizer)));
  }
  await writeFilesAtomically(dir, files);
}

function tesseraFiles(model: TransformerModel): ExportFile[] {
  const config = { model_type: HYBRID_MODEL_TYPE, source_architecture: model.architecture, ...describeModel(model) };
  const tensors = new Map<string, TensorToSave>();
  for (const [name, p] of model.namedParameters()) {
    tensors.set(name, { shape: p.shape, data: p.dataSync() as Float32Array });
  }
  return [
    { name: 'config.json', contents: `${JSON.stringify(config, null, 2)}\n` },
    { name: 'model.safetensors', contents: serializeSafetensors(tensors, { format: 'tessera' }) },
  ];
}

async function refuseNonEmpty(dir: string): Promise<void> {
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  if (entries.length > 0) {
    throw new Error(`saveModel: '${dir}' is not empty (${entries.slice(0, 3).join(', ')}${entries.length > 3 ? ', ...' : ''}); pass overwrite: true to write into it`);
  }
}

/** Write every file under a temporary name in `dir`, then rename each into place; on failure remove the temporaries. */
async function writeFilesAtomically(dir: string, files: readonly ExportFile[]): Promise<void> {
  await mkdir(dir, { recursive: true });
  const tag = `${process.pid}-${randomBytes(4).toString('hex')}`;
  const staged = files.map((f) => ({ temp: join(dir, `.${f.name}.${tag}.tmp`), final: join(dir, f.name), contents: f.contents }));
  try {
    for (const f of staged) await writeFile(f.temp, f.contents);
    for (const f of staged) await rename(f.temp, f.final);
  } catch (err) {
    // Renamed files are complete; only the temporaries that were not renamed are removed.
    await Promise.all(staged.map((f) => rm(f.temp, { force: true })));
    throw err;
  }
}
