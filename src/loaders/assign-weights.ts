import * as tf from '@tensorflow/tfjs-core';
import type { Module } from '../layers/module.js';
import { renameParameter, type RenameRules } from '../architectures/rename.js';
import type { TensorMap } from './raw-tensor.js';
import { checkKeys, type KeyList } from '../util/options.js';
import type { WeightDtype } from '../ops/packed-weights.js';

/** Options of a model load (`fromDir`, `fromHfHub`, `fromPretrained`, {@link assignWeights}). */
export interface WeightLoadOptions {
  /**
   * Load weights that hold NaN or ±Infinity. Off by default: such a weight is almost always a
   * corrupt or tampered file (or a failed conversion), and it would silently turn every output
   * into NaN, so the load fails naming each tensor and its count of non-finite values.
   */
  allowNonFinite?: boolean;
  /**
   * How linear-layer weights are held: 'float32' (default), 'bfloat16', 'float16', or 'int8'
   * (weight-only, one scale per output row). On the native backend they stay in that format in
   * memory; elsewhere they are rounded to it and kept as float32. See docs/precision.md.
   */
  dtype?: WeightDtype;
}

export interface AssignOptions extends WeightLoadOptions {
  rules: RenameRules;
  /** File tensors to skip silently (those HF itself ignores: buffers, heads a base model lacks). */
  ignore?: readonly RegExp[];
  /** Names the file is read from, for messages. */
  source?: string;
}

/** The keys of {@link WeightLoadOptions}, for the loaders' own key checks. */
export const WEIGHT_LOAD_OPTION_KEYS = { allowNonFinite: true, dtype: true } satisfies KeyList<WeightLoadOptions>;
const ASSIGN_OPTION_KEYS = { ...WEIGHT_LOAD_OPTION_KEYS, rules: true, ignore: true, source: true } satisfies KeyList<AssignOptions>;

/** How many elements of `data` are NaN or ±Infinity. */
function countNonFinite(data: Float32Array): number {
  let n = 0;
  // x - x is 0 for finite x and NaN for NaN and ±Infinity: one comparison per element.
  for (let i = 0; i < data.length; i++) if (data[i]! - data[i]! !== 0) n++;
  return n;
}

/**
 * Copy checkpoint tensors into a module tree. Every problem is collected first and reported in
 * one error, before any tensor is created: tensors the model lacks, parameters the file lacks,
 * shape mismatches, and (unless `allowNonFinite`) float weights holding NaN or ±Infinity.
 */
export function assignWeights(model: Module, tensors: TensorMap, options: AssignOptions): void {
  checkKeys(options, ASSIGN_OPTION_KEYS, 'assignWeights options');
  const params = new Map(model.namedParameters());
  const source = options.source ?? 'checkpoint';
  const assigned = new Set<string>();
  const unexpected: string[] = [];
  const mismatched: string[] = [];
  const nonFinite: string[] = [];
  const updates: [tf.Variable, Float32Array | Int32Array, number[]][] = [];

  for (const [name, tensor] of tensors) {
    if (options.ignore?.some((re) => re.test(name))) continue;
    const target = renameParameter(name, options.rules);
    const param = target === undefined ? undefined : params.get(target);
    if (target === undefined || param === undefined) {
      unexpected.push(target === undefined || target === name ? `'${name}'` : `'${name}' (-> '${target}')`);
      continue;
    }
    if (!tf.util.arraysEqual(param.shape, tensor.shape)) {
      mismatched.push(`tensor '${target}' (file: '${name}'): expected shape [${param.shape}], file has [${tensor.shape}]`);
      continue;
    }
    if (!options.allowNonFinite && tensor.data instanceof Float32Array) {
      const bad = countNonFinite(tensor.data);
      if (bad > 0) nonFinite.push(`tensor '${target}' (file: '${name}'): ${bad} of ${tensor.data.length} values are NaN or infinite`);
    }
    assigned.add(target);
    updates.push([param, tensor.data, tensor.shape]);
  }
  const missing = [...params.keys()].filter((p) => !assigned.has(p));
  if (unexpected.length + mismatched.length + missing.length + nonFinite.length > 0) {
    const parts: string[] = [];
    if (missing.length > 0) parts.push(`missing from the file: ${missing.map((m) => `'${m}'`).join(', ')}`);
    if (unexpected.length > 0) parts.push(`not in the model: ${unexpected.join(', ')}`);
    if (mismatched.length > 0) parts.push(`shape mismatch: ${mismatched.join('; ')}`);
    if (nonFinite.length > 0) {
      parts.push(`non-finite weights (the file is corrupt; pass { allowNonFinite: true } to load it anyway): ${nonFinite.join('; ')}`);
    }
    throw new Error(`cannot load ${source}:\n  ${parts.join('\n  ')}`);
  }
  for (const [param, data, shape] of updates) {
    tf.tidy(() => param.assign(tf.tensor(data, shape, param.dtype)));
  }
}
