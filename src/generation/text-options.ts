/** The types of text generation: the tokenizer it needs and its options. */
import type { GenerateOptions } from './generate.js';

/**
 * What text generation asks of a tokenizer. `lm.attachTokenizer` adapts an `AutoTokenizer` to it;
 * any other tokenizer can implement it directly.
 */
export interface TextTokenizer {
  /** The ids of one text, with the special tokens the model expects (e.g. `<s>`) when asked. */
  encodeText(text: string, options: { addSpecialTokens: boolean }): number[];
  /** Ids back to text, without special tokens (`</s>`, `<pad>`) when asked. */
  decode(ids: number[], options: { skipSpecialTokens: boolean }): string;
}

/**
 * Options of text generation (`lm.generate('text')`, `lm.streamText`, the text-generation
 * pipeline). Each one left out comes from the model's defaults (see `generationDefaults` and
 * docs/generation.md#text-generation for the order).
 */
export interface TextGenerateOptions extends Omit<GenerateOptions, 'stop' | 'cache' | 'onToken'> {
  /**
   * HF's `max_length`: most tokens per row counting the prompt (the longest prompt, as HF counts
   * the padded batch). `maxNewTokens` wins when both are given.
   */
  maxLength?: number;
  /**
   * Stop strings: a row ends as soon as its new text contains one, and its text ends just before
   * it (HF's `stop_strings` keeps the stop string; Tessera leaves it out).
   */
  stop?: string | readonly string[];
  /** Seed of the sampling strategy (the one given or the model's default); without it, sampling draws anew per call. */
  seed?: number;
  /** The prompt used for a text that encodes to no tokens (HF starts such a prompt with `bos_token_id`). */
  bosTokenId?: number;
  /** Encode prompts with the model's special tokens (e.g. a leading `<s>`). Default true, as the tokenizer does. */
  addSpecialTokens?: boolean;
  /** Leave special tokens (`</s>`) out of the text. Default true, as HF's text-generation pipeline. */
  skipSpecialTokens?: boolean;
}
