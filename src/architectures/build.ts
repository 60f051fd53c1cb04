import { totalmem } from 'node:os';
import { MAX_TENSOR_ELEMENTS } from '../util/limits.js';
import { checkKeys, type KeyList } from '../util/options.js';
import * as tf from '@tensorflow/tfjs-core';
import { disposeWeight } from '../ops/derived-weights.js';
import type { Architecture, ModelKind } from './architecture.js';
import { CONFIG_LIMITS, ConfigError } from './config-keys.js';
import type { ModelSize } from './size.js';

/** Environment variable that sets the default {@link BuildOptions.maxParameterBytes}. */
export const MAX_MODEL_BYTES_ENV = 'TESSERA_MAX_MODEL_BYTES';

const GiB = 2 ** 30;
/** tfjs-backend-wasm is a 32-bit wasm module: its heap, every tensor included, ends at 4 GiB. */
const WASM_HEAP_BYTES = 4 * GiB;

/** Options for building a model from a config. */
export interface BuildOptions {
  /**
   * The most bytes of float32 parameters a model may have; a config whose estimated size is
   * larger fails before anything is allocated. `Infinity` turns the check off.
   *
   * Default: the `TESSERA_MAX_MODEL_BYTES` environment variable (bytes, optionally with a unit:
   * `16GiB`, `500MB`, `Infinity`), else half of the wasm backend's 4 GiB heap on wasm, else half
   * of this machine's memory (`os.totalmem()`): loading holds the file's tensors and the model's
   * at once, and total memory is a stable bound where free memory changes with every file read.
   */
  maxParameterBytes?: number;
  /** Draw the random initial weights reproducibly from this integer seed. Default: unseeded. */
  seed?: number;
}

const BUILD_OPTION_KEYS = { maxParameterBytes: true, seed: true } satisfies KeyList<BuildOptions>;

/** A byte limit and where it came from (said in the error when a model exceeds it). */
export interface ByteLimit {
  bytes: number;
  from: string;
}

const UNITS: Record<string, number> = { '': 1, b: 1, kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12, kib: 2 ** 10, mib: 2 ** 20, gib: GiB, tib: 2 ** 40 };

/** `16GiB`, `500 MB`, `8e9`, `Infinity` -> bytes; undefined for anything else. */
function parseBytes(text: string): number | undefined {
  const m = /^\s*(Infinity|[0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([kmgt]i?b|b)?\s*$/i.exec(text);
  if (m === null) return undefined;
  const bytes = Number(m[1]) * UNITS[(m[2] ?? '').toLowerCase()]!;
  return bytes > 0 ? bytes : undefined;
}

function gib(bytes: number): string {
  return bytes === Infinity ? 'no limit' : bytes >= GiB / 10 ? `${(bytes / GiB).toFixed(1)} GiB` : `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

/** The parameter byte limit in force: the option, else the environment, else the backend's default. */
export function parameterByteLimit(options: BuildOptions = {}): ByteLimit {
  const given = options.maxParameterBytes;
  if (given !== undefined) {
    if (typeof given !== 'number' || Number.isNaN(given) || given <= 0) throw new Error(`maxParameterBytes must be a number of bytes above 0 (or Infinity), got ${given}`);
    return { bytes: given, from: 'maxParameterBytes' };
  }
  const env = globalThis.process?.env[MAX_MODEL_BYTES_ENV]; // a page has no process
  if (env !== undefined && env !== '') {
    const bytes = parseBytes(env);
    if (bytes === undefined) throw new Error(`${MAX_MODEL_BYTES_ENV}='${env}' is not a size; use bytes, e.g. 8589934592, 8GiB or Infinity`);
    return { bytes, from: MAX_MODEL_BYTES_ENV };
  }
  if (tf.getBackend() === 'wasm') return { bytes: WASM_HEAP_BYTES / 2, from: "half of the wasm backend's 4 GiB heap" };
  const total = totalmem();
  return { bytes: Math.floor(total / 2), from: `half of this machine's ${gib(total)} memory` };
}

/**
 * Throw a {@link ConfigError} when a model of `size` should not be built: more parameter bytes
 * than the limit, more tensors than {@link CONFIG_LIMITS}.tensors, or one tensor larger than a
 * typed array can hold. `defaulted` lists size keys the config left to the architecture's defaults.
 */
export function checkModelSize(size: ModelSize, limit: ByteLimit, what: string, defaulted: readonly string[] = []): void {
  const defaults = defaulted.length === 0 ? '' : `; not in the config, so the defaults were used: ${defaulted.join(', ')}`;
  if (size.tensors > CONFIG_LIMITS.tensors) {
    throw new ConfigError(
      `${what} would have ${size.tensors.toLocaleString('en-US')} parameter tensors, more than Tessera's bound of ${CONFIG_LIMITS.tensors.toLocaleString('en-US')}; ` +
        `reduce num_hidden_layers (or the layer list) or the number of experts${defaults}`,
    );
  }
  const bytes = size.parameters * 4;
  if (bytes > limit.bytes) {
    throw new ConfigError(
      `${what} would have ~${size.parameters.toLocaleString('en-US', { maximumSignificantDigits: 4 })} parameters (${gib(bytes)} as float32), ` +
        `above the limit of ${gib(limit.bytes)} (${limit.from})${defaults}. ` +
        `If the sizes are right, raise the limit: the maxParameterBytes option or ${MAX_MODEL_BYTES_ENV}=<bytes> (e.g. 32GiB, or Infinity)`,
    );
  }
  if (size.largestTensor > MAX_TENSOR_ELEMENTS) {
    throw new ConfigError(
      `${what} would have a parameter tensor of ${size.largestTensor.toLocaleString('en-US')} elements; ` +
        `one tensor holds at most 2^31 - 1 (tfjs indexes with 32-bit integers), so no backend can hold it${defaults}`,
    );
  }
}

/** Say where a config error came from (`(in dir/config.json)`), keeping the error itself. */
function located(err: unknown, source: string): unknown {
  if (err instanceof Error && source !== 'config' && !err.message.includes(source)) err.message += ` (in ${source})`;
  return err;
}

/**
 * Parse and check a raw config for `architecture` before anything is built: the architecture's
 * own validation (every size, divisibility, bound), then its size estimate against the limit.
 * Allocates no tensor.
 */
export function checkedConfig<C>(architecture: Architecture<C>, raw: Record<string, unknown>, kind: ModelKind, source: string, options: BuildOptions = {}): C {
  checkKeys(options, BUILD_OPTION_KEYS, 'fromConfig options');
  try {
    const config = architecture.parseConfig(raw);
    const size = architecture.estimateSize?.(config, kind);
    if (size !== undefined) {
      const defaulted = (architecture.sizeKeys ?? []).filter((k) => raw[k] === undefined);
      checkModelSize(size, parameterByteLimit(options), `a ${architecture.name} ${kind} of this config`, defaulted);
    }
    return config;
  } catch (err) {
    throw located(err, source);
  }
}

/**
 * Run `build`; if it throws, dispose every variable it had created before rethrowing, so a part
 * that rejects its options after others were built (e.g. a user's registered mixer) leaks nothing.
 */
export function disposeOnThrow<T>(build: () => T): T {
  const before = new Set(Object.keys(tf.engine().registeredVariables));
  try {
    return build();
  } catch (err) {
    for (const [name, variable] of Object.entries(tf.engine().registeredVariables)) {
      if (before.has(name)) continue;
      disposeWeight(variable); // with the tensors derived from it, as Module.dispose does
    }
    throw err;
  }
}
