/**
 * What the commands share once they run: resolving MODEL (a folder or a hub name) and choosing
 * which model class loads an architecture. Imported by the commands' actions only, on demand.
 */
import { existsSync, statSync } from 'node:fs';
import { AutoCausalLM, AutoDecoder, AutoEncoder, AutoMaskedLM, architectureRegistry, readConfig, snapshotModel, type ModelKind, type TransformerModel } from '../index.js';
import { CliError } from './errors.js';
import { hubOptions, type HubFlags } from './flags.js';

/**
 * The local folder of MODEL: an existing folder as is, else a hub name fetched into the cache
 * (only the files asked for). A path that does not exist is an error, not a hub lookup.
 */
export async function modelFolder(model: string, flags: HubFlags, want: { weights: boolean; tokenizer: boolean }): Promise<string> {
  if (existsSync(model)) {
    if (!statSync(model).isDirectory()) throw new CliError(`'${model}' is a file; MODEL is a model folder or a hub name ('org/name')`);
    if (flags.revision !== undefined) throw new CliError(`--revision applies to hub models, but '${model}' is a local folder`);
    return model;
  }
  if (/^[.~/]/.test(model) || model.split('/').length > 2 || model.includes('\\')) {
    throw new CliError(`'${model}' is neither an existing folder nor a Hugging Face model name ('org/name')`);
  }
  return snapshotModel(model, { ...hubOptions(flags), ...want });
}

/** Which classes load each kind. */
export const LOADERS = { 'causal-lm': AutoCausalLM, 'masked-lm': AutoMaskedLM, encoder: AutoEncoder, decoder: AutoDecoder } as const;
export type LoadableKind = keyof typeof LOADERS;

/**
 * The kind to load an architecture as: the first of `preference` it supports. The default prefers
 * the most complete model: a causal LM (with its head), then an encoder, then a decoder; a
 * checkpoint that declares a masked-LM head (`architectures: ["BertForMaskedLM"]`) keeps it.
 */
export function kindFor(
  kinds: readonly ModelKind[],
  preference: readonly LoadableKind[] = ['causal-lm', 'masked-lm', 'encoder', 'decoder'],
  raw: Record<string, unknown> = {},
): LoadableKind | undefined {
  const declared = Array.isArray(raw.architectures) ? raw.architectures : [];
  const maskedLm = declared.some((a) => typeof a === 'string' && a.endsWith('ForMaskedLM'));
  return preference.find((k) => kinds.includes(k) && (k !== 'masked-lm' || maskedLm));
}

/** The raw config of a model folder and the kinds its architecture can be loaded as. */
export async function folderConfig(dir: string): Promise<{ raw: Record<string, unknown>; architecture: string; kinds: readonly ModelKind[] }> {
  const raw = await readConfig(dir);
  const architecture = architectureRegistry().forConfig(raw, `${dir}/config.json`);
  return { raw, architecture: architecture.name, kinds: architecture.kinds };
}

/** Load a folder's model with its weights, as the first supported kind of `preference`. */
export async function loadModel(
  dir: string,
  preference?: readonly LoadableKind[],
): Promise<{ model: TransformerModel; kind: LoadableKind; raw: Record<string, unknown> }> {
  const { raw, architecture, kinds } = await folderConfig(dir);
  const kind = kindFor(kinds, preference, raw);
  if (kind === undefined) {
    throw new CliError(`'${dir}' is a ${architecture} model, which loads as ${kinds.join(' or ')}; this command needs a ${(preference ?? []).join(' or ')} model`);
  }
  return { model: await LOADERS[kind].fromDir(dir), kind, raw };
}
