import type { ModelParts } from '../models/transformer.js';
import type { ModelKind } from './model-kind.js';
import type { NameMap, RenameRules } from './rename.js';
import type { ModelSize } from './size.js';

export type { ModelKind } from './model-kind.js';

/**
 * Everything Tessera knows about one architecture: how to read its HF config, which blocks to
 * compose, and how HF names its parameters. Register one with the {@link ArchitectureRegistry}.
 */
export interface Architecture<Config = unknown> {
  /** Tessera's name for it (`bert`, `llama`, `mamba`). */
  readonly name: string;
  /** HF `model_type` values it handles. */
  readonly modelTypes: readonly string[];
  /** Recognise configs that carry no `model_type` (e.g. the original state-spaces Mamba repos). */
  detect?(raw: Record<string, unknown>): boolean;
  /** The kinds of model it can be built as. */
  readonly kinds: readonly ModelKind[];
  /** Parse HF `config.json` into the typed config (the one place that reads its keys). */
  parseConfig(raw: Record<string, unknown>): Config;
  /**
   * What {@link build} would allocate, counted without allocating (see `SizeTally`). Loaders
   * compare it with the memory limit before building; without it, only the config is checked.
   */
  estimateSize?(config: Config, kind: ModelKind): ModelSize;
  /** The raw config keys that set sizes, listed when an over-limit config left them to defaults. */
  readonly sizeKeys?: readonly string[];
  /** Compose the model from shared blocks (random init; loading overwrites the weights). */
  build(config: Config, kind: ModelKind): ModelParts;
  /** HF parameter name -> Tessera path. */
  readonly hfNames: RenameRules;
  /** File tensors HF ignores for this architecture (non-persistent buffers and the like). */
  readonly ignore?: readonly RegExp[];
  /**
   * File tensors HF ignores for a model of `kind` only: the heads that kind is built without
   * (BERT: the `cls.*` heads for an encoder, the pooler for a masked LM). Added to {@link ignore}.
   */
  ignoreForKind?(kind: ModelKind): readonly RegExp[];
  /** How to write the model back in HF's format; without it, `saveModel(..., { format: 'hf' })` refuses. */
  readonly hfExport?: HfExport<Config>;
}

/** What exporting to HF's format needs from an architecture (see `saveModel`'s `format: 'hf'`). */
export interface HfExport<Config> {
  /** The parameter names both ways; exports use {@link NameMap.toHf}. */
  readonly names: NameMap;
  /**
   * HF's `config.json` for a model of `kind` built from `config`: `model_type`, `architectures`
   * (the HF class with a head for causal LMs, the base class otherwise) and every key HF needs to
   * build the same model. Parsing the result gives `config` back.
   */
  config(config: Config, kind: ModelKind): Record<string, unknown>;
}
