/**
 * The `Auto*` loaders over a {@link ModelStorage}: what the browser entry exports as
 * `AutoCausalLM` & co. (`fromHfHub` through fetch and the Cache API, `fromUrl`, `fromStorage`),
 * and usable in Node with `folderStorage`. Browser-safe: no Node built-in is imported here.
 */
import type { ModelKind } from '../../architectures/architecture.js';
import type { BuildOptions } from '../../architectures/build.js';
import type { CausalLM } from '../../models/causal-lm.js';
import type { DecoderModel } from '../../models/decoder.js';
import type { EncoderModel } from '../../models/encoder.js';
import type { MaskedLM } from '../../models/masked-lm.js';
import type { TransformerModel } from '../../models/transformer.js';
import { settleWeights } from '../../kernels/weights.js';
import { checkWeightDtype } from '../../ops/packed-weights.js';
import { checkKeys, type KeyList } from '../../util/options.js';
import { WEIGHT_LOAD_OPTION_KEYS, type WeightLoadOptions } from '../assign-weights.js';
import { buildChecked, buildFromConfig, checkedArchitecture, fillFromCheckpoint, KIND_LABEL } from '../build-model.js';
import { rememberSource } from '../model-source.js';
import type { TensorMap } from '../raw-tensor.js';
import { parseSafetensors } from '../safetensors-format.js';
import { Tokenizer } from '../tokenizer-core.js';
import { hubStorage, urlStorage, type HttpStorageOptions, type HubStorageOptions } from './http.js';
import { readJsonFile, type ModelStorage } from './storage.js';

/** Options of the storage loaders: the weights' ({@link WeightLoadOptions}) and `tokenizer`. */
export interface StorageLoadOptions extends WeightLoadOptions {
  /** `AutoCausalLM` only: also load the tokenizer and `generation_config.json` and attach them (see `lm.generate('text')`). Default false. */
  tokenizer?: boolean;
}

const LOAD_KEYS = { ...WEIGHT_LOAD_OPTION_KEYS, tokenizer: true } satisfies KeyList<StorageLoadOptions>;
const HUB_KEYS = { ...LOAD_KEYS, cache: true, offline: true, fetch: true, revision: true, endpoint: true, token: true, refresh: true } satisfies KeyList<StorageLoadOptions & HubStorageOptions>;
const URL_KEYS = { ...LOAD_KEYS, cache: true, offline: true, fetch: true } satisfies KeyList<StorageLoadOptions & HttpStorageOptions>;

/** Split the storage's options from the load's. */
function splitOptions<T extends StorageLoadOptions>(options: T): [Omit<T, keyof StorageLoadOptions>, StorageLoadOptions] {
  const { allowNonFinite, dtype, tokenizer, ...rest } = options;
  return [rest, { allowNonFinite, dtype, tokenizer }];
}

/** A shard name from an index names a file of the same model: relative, no `..`, no backslash. */
function checkShard(file: string, index: string): void {
  if (file === '' || file.startsWith('/') || file.includes('\\') || file.includes('\0') || /^[A-Za-z]:/.test(file) || file.split('/').includes('..')) {
    throw new Error(`${index}: shard '${file}' is not a file inside the model; a shard index may only name the model's own files`);
  }
}

/**
 * The weights of a model: `model.safetensors`, or the shards `model.safetensors.index.json` lists.
 * PyTorch `.bin` checkpoints are read by the Node loaders only (their zip reader uses Node's zlib).
 */
export async function readStorageWeights(storage: ModelStorage): Promise<TensorMap> {
  const single = await storage.read('model.safetensors');
  if (single !== undefined) return parseSafetensors(single, `${storage.location}/model.safetensors`);
  const indexName = `${storage.location}/model.safetensors.index.json`;
  const index = await readJsonFile(storage, 'model.safetensors.index.json');
  if (index === undefined) {
    const bin = (await storage.read('pytorch_model.bin.index.json')) ?? (await storage.read('pytorch_model.bin'));
    throw new Error(
      bin === undefined
        ? `no weights in '${storage.location}': expected model.safetensors or model.safetensors.index.json`
        : `'${storage.location}' has only PyTorch .bin weights, which load in Node only; convert them to safetensors (or load with the Node entry and save with model.save(dir, { format: 'hf' }))`,
    );
  }
  const map = index.weight_map;
  if (map === null || typeof map !== 'object' || Array.isArray(map)) throw new Error(`${indexName} has no weight_map object (tensor name -> shard file)`);
  const entries = Object.entries(map as Record<string, unknown>);
  for (const [name, file] of entries) {
    if (typeof file !== 'string') throw new Error(`${indexName}: weight_map entry for tensor '${name}' is not a shard file name`);
    checkShard(file, indexName);
  }
  const tensors: TensorMap = new Map();
  for (const file of new Set(entries.map(([, f]) => f as string))) {
    const bytes = await storage.read(file);
    if (bytes === undefined) throw new Error(`shard '${file}' listed in ${indexName} is missing`);
    for (const [name, t] of parseSafetensors(bytes, `${storage.location}/${file}`)) {
      if (tensors.has(name)) throw new Error(`tensor '${name}' is in two shards listed in ${indexName}`);
      tensors.set(name, t);
    }
  }
  for (const [name, file] of entries) {
    if (!tensors.has(name)) throw new Error(`tensor '${name}' is listed in ${indexName} but not found in its shard '${file as string}'`);
  }
  return tensors;
}

/** Load a model of `kind` from any storage: config checked first, then weights, then (optionally) the tokenizer. */
export async function loadFromStorage(storage: ModelStorage, kind: ModelKind, options: StorageLoadOptions = {}): Promise<TransformerModel> {
  checkKeys(options, LOAD_KEYS, `${KIND_LABEL[kind]}.fromStorage options`);
  if (options.tokenizer === true && kind !== 'causal-lm') {
    throw new Error(`${KIND_LABEL[kind]}: the tokenizer option is for AutoCausalLM (text generation); load a tokenizer with AutoTokenizer.fromStorage(storage)`);
  }
  checkWeightDtype(options.dtype ?? 'float32', `${KIND_LABEL[kind]} options`);
  const config = await readJsonFile(storage, 'config.json');
  if (config === undefined) throw new Error(`no config.json in '${storage.location}': is this a Hugging Face model?`);
  const source = `${storage.location}/config.json`;
  const checked = checkedArchitecture(config, kind, source, {});
  const tensors = await readStorageWeights(storage);
  const model = fillFromCheckpoint(buildChecked(checked, kind), { dir: storage.location, config, tensors }, kind, options);
  rememberSource(model, { dir: storage.location, config });
  if (options.tokenizer === true) {
    try {
      const tokenizer = await Tokenizer.fromStorage(storage);
      (model as CausalLM).attachTokenizer(tokenizer, { generationConfig: await readJsonFile(storage, 'generation_config.json') });
    } catch (err) {
      model.dispose();
      throw err;
    }
  }
  return model;
}

function storageLoader<M extends TransformerModel>(kind: ModelKind) {
  const label = KIND_LABEL[kind];
  return class {
    /** Load from any {@link ModelStorage} (a folder in Node, the hub or a URL in a browser). */
    static async fromStorage(storage: ModelStorage, options: StorageLoadOptions = {}): Promise<M> {
      return (await loadFromStorage(storage, kind, options)) as M;
    }
    /**
     * Load by Hugging Face model name over HTTP, files kept in the browser's Cache API (see
     * {@link hubStorage} for revisions, offline mode and the cache).
     */
    static async fromHfHub(name: string, options: StorageLoadOptions & HubStorageOptions = {}): Promise<M> {
      checkKeys(options, HUB_KEYS, `${label}.fromHfHub options`);
      const [hub, load] = splitOptions(options);
      return (await loadFromStorage(await hubStorage(name, hub), kind, load)) as M;
    }
    /** Same as {@link fromHfHub}: in a browser every name is a hub name (there are no folders). */
    static async fromPretrained(name: string, options: StorageLoadOptions & HubStorageOptions = {}): Promise<M> {
      checkKeys(options, HUB_KEYS, `${label}.fromPretrained options`);
      const [hub, load] = splitOptions(options);
      return (await loadFromStorage(await hubStorage(name, hub), kind, load)) as M;
    }
    /** Load a model folder served at `baseUrl` (`<baseUrl>/config.json`, `<baseUrl>/model.safetensors` ...). */
    static async fromUrl(baseUrl: string, options: StorageLoadOptions & HttpStorageOptions = {}): Promise<M> {
      checkKeys(options, URL_KEYS, `${label}.fromUrl options`);
      const [http, load] = splitOptions(options);
      return (await loadFromStorage(await urlStorage(baseUrl, http), kind, load)) as M;
    }
    /** A randomly initialised model for an HF-style config, checked before anything is allocated. */
    static fromConfig(config: Record<string, unknown>, options: BuildOptions = {}): M {
      const { model } = buildFromConfig(config, kind, 'config', options);
      settleWeights(model.namedParameters().map(([, p]) => p));
      return model as M;
    }
  };
}

/** Bidirectional encoders (BERT) from storage. */
export const StorageAutoEncoder = storageLoader<EncoderModel>('encoder');
/** Decoders without their LM head from storage. */
export const StorageAutoDecoder = storageLoader<DecoderModel>('decoder');
/** Causal language models (Llama, Mamba, Jamba, hybrids) from storage. */
export const StorageAutoCausalLM = storageLoader<CausalLM>('causal-lm');
/** Masked language models (BERT with its head) from storage. */
export const StorageAutoMaskedLM = storageLoader<MaskedLM>('masked-lm');

/** Tokenizers from storage: the hub over HTTP, a base URL, or any {@link ModelStorage}. */
export class StorageAutoTokenizer extends Tokenizer {
  /** The tokenizer files of hub model `name` (see {@link hubStorage}). */
  static async fromHfHub(name: string, options: HubStorageOptions = {}): Promise<Tokenizer> {
    return Tokenizer.fromStorage(await hubStorage(name, options));
  }
  /** The tokenizer files served under `baseUrl`. */
  static async fromUrl(baseUrl: string, options: HttpStorageOptions = {}): Promise<Tokenizer> {
    return Tokenizer.fromStorage(await urlStorage(baseUrl, options));
  }
}
