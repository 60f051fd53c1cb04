import { AutoCausalLM, readGenerationConfig } from '../loaders/auto.js';
import type { AutoTokenizer } from '../loaders/tokenizer.js';
import type { CausalLM } from '../models/causal-lm.js';
import type { TextGenerateOptions } from '../generation/text-options.js';
import { TEXT_GENERATE_OPTION_KEYS } from '../generation/text.js';
import { checkKeys, type KeyList } from '../util/options.js';
import { textList, pipelineSource, type PipelineOptions } from './load.js';

/** Options of a text-generation call: those of `lm.generate(text)`, and `returnFullText`. */
export interface TextGenerationCallOptions extends TextGenerateOptions {
  /** Start each result with its prompt (HF's `return_full_text`). Default true, as in HF. */
  returnFullText?: boolean;
}

const CALL_OPTION_KEYS = { ...TEXT_GENERATE_OPTION_KEYS, returnFullText: true } as const satisfies KeyList<TextGenerationCallOptions>;

/** One continued text. */
export interface TextGenerationResult {
  /** The prompt and its continuation, or the continuation alone with `returnFullText: false`. */
  generatedText: string;
}

/**
 * Text continuation with a causal LM and its tokenizer (`pipeline('text-generation', ...)`), with
 * the model's defaults from `generation_config.json` (or `config.json`); every option of a call
 * overrides them (docs/generation.md#text-generation).
 */
export interface TextGenerationPipeline {
  /**
   * Continue one text or a batch (one left-padded batch): one result per text, in order. No
   * tensor outlives the call.
   */
  (texts: string | readonly string[], options?: TextGenerationCallOptions): Promise<TextGenerationResult[]>;
  /** The continuation of one text in pieces as it is generated (see `lm.streamText`): whole characters only. */
  stream(text: string, options?: TextGenerateOptions): AsyncGenerator<string, string>;
  readonly task: 'text-generation';
  /** The model, with the tokenizer attached. */
  readonly model: CausalLM;
  readonly tokenizer: AutoTokenizer;
  /** Free the model's weights; later calls throw `ModelDisposedError`. */
  dispose(): void;
}

/**
 * Load the text-generation pipeline for a folder or hub name holding a causal LM (Llama, Mamba,
 * Jamba, hybrids) and its tokenizer (see `pipeline`).
 */
export async function loadTextGenerationPipeline(nameOrDir: string, options: PipelineOptions = {}): Promise<TextGenerationPipeline> {
  const source = await pipelineSource('text-generation', nameOrDir, options);
  // Files first: a folder without a tokenizer fails before its weights are read.
  const tokenizer = await source.tokenizer();
  const generationConfig = await readGenerationConfig(source.dir);
  const model = await AutoCausalLM.fromDir(source.dir, source.load);
  try {
    model.attachTokenizer(tokenizer, { generationConfig });
  } catch (err) {
    model.dispose();
    throw err;
  }
  const generate = async (input: string | readonly string[], opts: TextGenerationCallOptions = {}): Promise<TextGenerationResult[]> => {
    checkKeys(opts, CALL_OPTION_KEYS, 'text-generation options');
    const { returnFullText = true, ...rest } = opts ?? {};
    if (typeof returnFullText !== 'boolean') throw new Error(`text-generation: returnFullText must be true or false, got ${JSON.stringify(returnFullText)}`);
    const { texts } = textList(input, 'text-generation');
    const continued = model.generate(texts, rest);
    return continued.map((text, i) => ({ generatedText: returnFullText ? texts[i]! + text : text }));
  };
  return Object.assign(generate, {
    task: 'text-generation' as const,
    model,
    tokenizer,
    stream: (text: string, opts?: TextGenerateOptions) => model.streamText(text, opts),
    dispose: () => model.dispose(),
  }) as TextGenerationPipeline;
}
