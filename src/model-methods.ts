/**
 * The convenience methods of the model classes, each a thin wrapper over a free function that
 * stays the implementation (and stays public):
 *
 * | method | free function |
 * | --- | --- |
 * | `model.hookPoints()`, `addHook`, `addPreHook`, `runWithCache`, `runWithHooks` | the same names in `src/hooks/run.ts` |
 * | `lm.generate()`, `lm.stream()` | `generate`, `stream` in `src/generation/generate.ts` |
 * | `lm.generate('text')`, `lm.streamText()`, `lm.attachTokenizer()` | `generateText`, `streamText`, `attachTokenizer` in `src/generation/text.ts` |
 * | `model.save(dir)` | `saveModel` in `src/loaders/save.ts` |
 *
 * They are attached here, in one place, rather than written in the classes: hooks, generation and
 * saving import the model classes, so the classes cannot import them back (models never know
 * about hooks, generation or files). The package entry (`src/index.ts`) and the `Auto*` loaders
 * import this module, so every model a user can obtain has the methods.
 */
import type * as tf from '@tensorflow/tfjs-core';
import { generate, stream, type GenerateOptions, type TokenEvent } from './generation/generate.js';
import { attachDefaults, type AttachTokenizerOptions } from './generation/generation-config.js';
import { attachTokenizer, generateText, streamText } from './generation/text.js';
import type { TextGenerateOptions, TextTokenizer } from './generation/text-options.js';
import * as hooks from './hooks/run.js';
import type { HookFn, HookHandle } from './layers/module.js';
import { sourceOf } from './loaders/model-source.js';
import { saveModel, type SaveOptions } from './loaders/save.js';
// The class every tokenizer loader returns (AutoTokenizer in Node, the storage tokenizer in the browser).
import { Tokenizer } from './loaders/tokenizer-core.js';
import { CausalLM } from './models/causal-lm.js';
import type { Model } from './models/model.js';
import { TransformerModel, type ForwardOptions } from './models/transformer.js';

declare module './models/transformer.js' {
  interface TransformerModel<Config> {
    /** Every hook point: module paths (`layers.0.mixer`) and their taps (`layers.0.mixer.scores`). */
    hookPoints(): string[];
    /** Hook the output of `name`; returning a tensor of the same shape replaces it downstream. */
    addHook(name: string, fn: HookFn): HookHandle;
    /** Hook the input of the module `name`; returning a tensor replaces it. */
    addPreHook(name: string, fn: HookFn): HookHandle;
    /** Run this model's `forward` and capture the activations at `options.names` (default: all). */
    runWithCache<O>(this: TransformerModel & Model<O>, inputIds: tf.Tensor2D, options?: hooks.RunWithCacheOptions): hooks.CachedRun<O>;
    /** Run this model's `forward` with `specs` attached; they are removed afterwards, even on error. */
    runWithHooks<O>(
      this: TransformerModel & Model<O>,
      inputIds: tf.Tensor2D,
      specs: readonly hooks.HookSpec[] | Readonly<Record<string, HookFn>>,
      options?: ForwardOptions,
    ): O;
    /** Write `config.json` and `model.safetensors` to `dir`, in Tessera's format or (`format: 'hf'`) HF's (see {@link saveModel}). */
    save(dir: string, options?: SaveOptions): Promise<void>;
  }
}

declare module './models/causal-lm.js' {
  interface CausalLM<Config> {
    /** New token ids per prompt (see {@link generate}: greedy or sampled, KV cache / Mamba state). */
    generate(promptIds: readonly (readonly number[])[], options?: GenerateOptions): number[][];
    /** The new text after `prompt`, with the attached tokenizer and defaults (see {@link generateText}). */
    generate(prompt: string, options?: TextGenerateOptions): string;
    /** The new text after each prompt, generated as one left-padded batch (see {@link generateText}). */
    generate(prompts: readonly string[], options?: TextGenerateOptions): string[];
    /** The tokens of {@link CausalLM.generate} as they come (see {@link stream}). */
    stream(promptIds: readonly (readonly number[])[], options?: GenerateOptions): AsyncGenerator<TokenEvent, number[][]>;
    /** The new text after `prompt` in pieces as it is generated, whole characters only (see {@link streamText}). */
    streamText(prompt: string, options?: TextGenerateOptions): AsyncGenerator<string, string>;
    /**
     * Attach a tokenizer so {@link CausalLM.generate} and {@link CausalLM.streamText} take text, with
     * text-generation defaults from `generation_config.json` / `config.json` (see
     * {@link AttachTokenizerOptions}); replaces any tokenizer attached before. Returns the model.
     */
    attachTokenizer(tokenizer: Tokenizer, options?: AttachTokenizerOptions): this;
    // A second signature rather than a union, so that an object literal's methods get their
    // parameter types from TextTokenizer.
    attachTokenizer(tokenizer: TextTokenizer, options?: AttachTokenizerOptions): this;
  }
}

/** Define `methods` on `prototype` as class methods are: writable, configurable, not enumerable. */
function attach<T extends object>(prototype: T, methods: Partial<T>): void {
  for (const [name, method] of Object.entries(methods)) {
    Object.defineProperty(prototype, name, { value: method, writable: true, configurable: true, enumerable: false });
  }
}

attach(TransformerModel.prototype, {
  hookPoints(this: TransformerModel): string[] {
    this.assertNotDisposed('hookPoints');
    return hooks.hookPoints(this);
  },
  addHook(this: TransformerModel, name: string, fn: HookFn): HookHandle {
    this.assertNotDisposed('addHook');
    return hooks.addHook(this, name, fn);
  },
  addPreHook(this: TransformerModel, name: string, fn: HookFn): HookHandle {
    this.assertNotDisposed('addPreHook');
    return hooks.addPreHook(this, name, fn);
  },
  runWithCache<O>(this: TransformerModel & Model<O>, inputIds: tf.Tensor2D, options?: hooks.RunWithCacheOptions): hooks.CachedRun<O> {
    this.assertNotDisposed('runWithCache');
    return hooks.runWithCache(this, inputIds, options);
  },
  runWithHooks<O>(
    this: TransformerModel & Model<O>,
    inputIds: tf.Tensor2D,
    specs: readonly hooks.HookSpec[] | Readonly<Record<string, HookFn>>,
    options?: ForwardOptions,
  ): O {
    this.assertNotDisposed('runWithHooks');
    return hooks.runWithHooks(this, inputIds, specs, options);
  },
  save(this: TransformerModel, dir: string, options?: SaveOptions): Promise<void> {
    return saveModel(this, dir, options);
  },
});

attach(CausalLM.prototype, {
  generate(this: CausalLM, prompts: string | readonly string[] | readonly (readonly number[])[], options?: GenerateOptions & TextGenerateOptions): any {
    // Text when the prompt is a string or the batch holds strings; ids otherwise.
    const text = typeof prompts === 'string' || (Array.isArray(prompts) && typeof prompts[0] === 'string');
    return text ? generateText(this, prompts as string | readonly string[], options) : generate(this, prompts as readonly (readonly number[])[], options);
  },
  streamText(this: CausalLM, prompt: string, options?: TextGenerateOptions): AsyncGenerator<string, string> {
    return streamText(this, prompt, options);
  },
  attachTokenizer(this: CausalLM, tokenizer: Tokenizer | TextTokenizer, options: AttachTokenizerOptions = {}): CausalLM {
    const source = sourceOf(this);
    attachTokenizer(this, tokenizer instanceof Tokenizer ? textTokenizer(tokenizer) : tokenizer, attachDefaults(options, source?.config, source?.dir));
    return this;
  },
  stream(this: CausalLM, promptIds: readonly (readonly number[])[], options?: GenerateOptions): AsyncGenerator<TokenEvent, number[][]> {
    return stream(this, promptIds, options);
  },
});

/** A {@link Tokenizer} (an `AutoTokenizer`, or the storage loaders' tokenizer) as text generation uses it: one text to ids, ids to text. */
function textTokenizer(tokenizer: Tokenizer): TextTokenizer {
  return {
    encodeText: (text, { addSpecialTokens }) => tokenizer.inner.encode(text, { add_special_tokens: addSpecialTokens }).map(Number),
    decode: (ids, { skipSpecialTokens }) => tokenizer.decode(ids, { skipSpecialTokens }),
  };
}
