/**
 * The files of a Hugging Face export: `config.json` in HF's keys, `model.safetensors` under HF's
 * names (what `save_pretrained` writes, so `from_pretrained` loads it), and the tokenizer's files.
 * The names come from the architecture's {@link NameMap}, the same declaration loading uses.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Architecture, HfExport, ModelKind } from '../architectures/architecture.js';
import { describeModel } from '../architectures/hybrid/describe.js';
import { jambaFromHybrid } from '../architectures/jamba/from-hybrid.js';
import { architectureRegistry } from '../architectures/registry.js';
import { renameParameter } from '../architectures/rename.js';
import { CausalLM } from '../models/causal-lm.js';
import { EncoderModel } from '../models/encoder.js';
import { MaskedLM } from '../models/masked-lm.js';
import type { TransformerModel } from '../models/transformer.js';
import { TOKENIZER_FILES } from './hub/file-selection.js';
import { sourceOf } from './model-source.js';
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
  if (model instanceof MaskedLM) return 'masked-lm';
  return model instanceof EncoderModel ? 'encoder' : 'decoder';
}

/** What an export writes a model as: an architecture that declares an export, and its typed config. */
interface ExportPlan {
  architecture: Architecture<unknown> & { hfExport: HfExport<unknown> };
  config: unknown;
}

/**
 * The architecture `model` is exported as: its own when it declares `hfExport`; for a hybrid,
 * Jamba when the hybrid's layers are exactly Jamba's (see {@link jambaFromHybrid}).
 */
function exportPlan(model: TransformerModel): ExportPlan {
  const registry = architectureRegistry();
  const architecture = registry.get(model.architecture);
  if (architecture.hfExport !== undefined) return { architecture: architecture as ExportPlan['architecture'], config: model.config };
  let why = `architecture '${model.architecture}' declares no hfExport (HF names both ways and a config writer)`;
  if (model.architecture === 'hybrid') {
    const reading = jambaFromHybrid(describeModel(model));
    if ('config' in reading) return { architecture: registry.get('jamba') as ExportPlan['architecture'], config: reading.config };
    why = `a Tessera hybrid exports only when its layers are Jamba's, and ${reading.reason}`;
  }
  const exportable = registry.names().filter((n) => registry.get(n).hfExport !== undefined);
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
  const { architecture, config } = exportPlan(model);
  const kind = kindOf(model);
  // A class with a head (LlamaForCausalLM, BertForMaskedLM) keeps its base model under a prefix.
  const rules = architecture.hfExport.names.toHf(kind === 'causal-lm' || kind === 'masked-lm');
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
  const hfConfig = { ...architecture.hfExport.config(config, kind), ...specialTokenIds(model, architecture) };
  return [
    { name: 'config.json', contents: `${JSON.stringify(hfConfig, null, 2)}\n` },
    { name: 'model.safetensors', contents: serializeSafetensors(tensors, { format: 'pt' }) },
  ];
}

/** The config keys HF's generation reads that no typed config keeps. */
const SPECIAL_TOKEN_KEYS = ['bos_token_id', 'eos_token_id', 'pad_token_id', 'sep_token_id'] as const;

/**
 * The special token ids of the HF folder `model` was loaded from, when it was a checkpoint of the
 * architecture being written; otherwise none, and HF's defaults apply.
 */
function specialTokenIds(model: TransformerModel, architecture: Architecture<unknown>): Record<string, unknown> {
  const source = sourceOf(model);
  if (source === undefined || !architecture.modelTypes.includes(source.config.model_type as string)) return {};
  return Object.fromEntries(SPECIAL_TOKEN_KEYS.filter((k) => source.config[k] !== undefined).map((k) => [k, source.config[k]]));
}

/** `generation_config.json` of a model folder, as is, when it has one. */
export async function generationConfigFile(dir: string): Promise<ExportFile[]> {
  try {
    return [{ name: 'generation_config.json', contents: await readFile(join(dir, 'generation_config.json')) }];
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    return [];
  }
}

/**
 * The tokenizer files (those HF's tokenizer classes read) found in `source`: a tokenizer's own
 * folder or a model folder. A source named by the caller (`required`) with none of them is an
 * error, not a silent omission.
 */
export async function tokenizerFiles(source: AutoTokenizer | string, required = true): Promise<ExportFile[]> {
  const dir = typeof source === 'string' ? source : source.dir;
  const files: ExportFile[] = [];
  for (const name of TOKENIZER_FILES) {
    try {
      files.push({ name, contents: await readFile(join(dir, name)) });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  if (files.length === 0 && required) throw new HfExportError(`no tokenizer files in '${dir}' (looked for ${TOKENIZER_FILES.join(', ')})`);
  return files;
}
