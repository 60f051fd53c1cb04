/**
 * The files of a Hugging Face export: `config.json` in HF's keys, `model.safetensors` under HF's
 * names (what `save_pretrained` writes, so `from_pretrained` loads it), and the tokenizer's files.
 * The names come from the architecture's {@link NameMap}, the same declaration loading uses.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Architecture, ModelKind } from '../architectures/architecture.js';
import { architectureRegistry } from '../architectures/registry.js';
import { renameParameter } from '../architectures/rename.js';
import { CausalLM } from '../models/causal-lm.js';
import { EncoderModel } from '../models/encoder.js';
import type { TransformerModel } from '../models/transformer.js';
import { TOKENIZER_FILES } from './hub/file-selection.js';
import { serializeSafetensors, type TensorToSave } from './safetensors.js';
import type { AutoTokenizer } from './tokenizer.js';

/** A file to write: its name in the target folder and its contents. */
export interface ExportFile {
  name: string;
  contents: Uint8Array | string;
}

/** Why a model cannot be written in HF's format; names the model and what to do instead. */
export class HfExportError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'HfExportError';
  }
}

function kindOf(model: TransformerModel): ModelKind {
  if (model instanceof CausalLM) return 'causal-lm';
  return model instanceof EncoderModel ? 'encoder' : 'decoder';
}

/** The registered architecture of `model`, if it says how to export itself. */
function exportableArchitecture(model: TransformerModel): Architecture<unknown> & Required<Pick<Architecture<unknown>, 'hfExport'>> {
  const architecture = architectureRegistry().get(model.architecture);
  if (architecture.hfExport !== undefined) return architecture as Architecture<unknown> & Required<Pick<Architecture<unknown>, 'hfExport'>>;
  const exportable = architectureRegistry()
    .names()
    .filter((n) => architectureRegistry().get(n).hfExport !== undefined);
  const why =
    model.architecture === 'hybrid'
      ? 'a Tessera hybrid has no Hugging Face architecture to load it as'
      : `architecture '${model.architecture}' declares no hfExport (HF names both ways and a config writer)`;
  throw new HfExportError(
    `cannot export ${model.label} to Hugging Face format: ${why}. Exportable: ${exportable.join(', ')}; save it in Tessera's format instead (format: 'tessera', the default)`,
  );
}

/**
 * `config.json` and `model.safetensors` of `model` in HF's format: every parameter under its HF
 * name, float32, with `format: "pt"` metadata (transformers refuses safetensors without it). A
 * tied LM head is not a parameter of its own, so it is not in the file, as with `save_pretrained`.
 */
export function hfModelFiles(model: TransformerModel): ExportFile[] {
  const architecture = exportableArchitecture(model);
  const kind = kindOf(model);
  const rules = architecture.hfExport.names.toHf(kind === 'causal-lm');
  const tensors = new Map<string, TensorToSave>();
  const unnamed: string[] = [];
  for (const [path, p] of model.namedParameters()) {
    const name = renameParameter(path, rules);
    if (name === undefined) unnamed.push(path);
    else tensors.set(name, { shape: p.shape, data: p.dataSync() as Float32Array });
  }
  if (unnamed.length > 0) {
    throw new HfExportError(`cannot export ${model.label} to Hugging Face format: no HF name for ${unnamed.map((p) => `'${p}'`).join(', ')} in the ${architecture.name} name map`);
  }
  const config = architecture.hfExport.config(model.config, kind);
  return [
    { name: 'config.json', contents: `${JSON.stringify(config, null, 2)}\n` },
    { name: 'model.safetensors', contents: serializeSafetensors(tensors, { format: 'pt' }) },
  ];
}

/**
 * The tokenizer files (those HF's tokenizer classes read) found in `source`: a tokenizer's own
 * folder or a model folder. A source with none of them is an error, not a silent omission.
 */
export async function tokenizerFiles(source: AutoTokenizer | string): Promise<ExportFile[]> {
  const dir = typeof source === 'string' ? source : source.dir;
  const files: ExportFile[] = [];
  for (const name of TOKENIZER_FILES) {
    try {
      files.push({ name, contents: await readFile(join(dir, name)) });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  if (files.length === 0) throw new HfExportError(`no tokenizer files in '${dir}' (looked for ${TOKENIZER_FILES.join(', ')})`);
  return files;
}
