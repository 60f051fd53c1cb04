/**
 * `pipeline(task, nameOrDir, options)`: a model and its tokenizer, loaded by hub name or folder,
 * behind one call per task (as transformers.js's `pipeline`), with plain values in and out.
 */
import { editDistance, nearestNames } from '../util/suggest.js';
import { loadFeatureExtractionPipeline, type FeatureExtractionPipeline } from './feature-extraction.js';
import { loadFillMaskPipeline, type FillMaskPipeline } from './fill-mask.js';
import type { PipelineOptions } from './load.js';
import { loadTextGenerationPipeline, type TextGenerationPipeline } from './text-generation.js';

/** The tasks {@link pipeline} builds. */
export const PIPELINE_TASKS = ['feature-extraction', 'fill-mask', 'text-generation'] as const;

/** A task name {@link pipeline} accepts. */
export type PipelineTask = (typeof PIPELINE_TASKS)[number];

/** Any pipeline {@link pipeline} builds; `task` tells which. */
export type Pipeline = FeatureExtractionPipeline | FillMaskPipeline | TextGenerationPipeline;

/** `pipeline` was asked for a task it does not have; names the nearest one. */
export class UnknownTaskError extends Error {
  override name = 'UnknownTaskError';
  constructor(
    readonly task: string,
    readonly suggestion: string | undefined,
  ) {
    super(`pipeline: unknown task ${JSON.stringify(task)}; ${suggestion === undefined ? '' : `did you mean '${suggestion}'? `}tasks: ${PIPELINE_TASKS.join(', ')}`);
  }
}

/**
 * Text to vectors: `(texts, { pooling: 'mean' | 'cls' | 'none', normalize })` gives one vector
 * per text (mean over the tokens by default), or every token's vector with `pooling: 'none'`.
 * Loads an encoder (BERT, or a BERT masked-LM checkpoint's encoder) and its tokenizer.
 */
export function pipeline(task: 'feature-extraction', nameOrDir: string, options?: PipelineOptions): Promise<FeatureExtractionPipeline>;
/** The likeliest tokens for the mask token of each text: `(text, { topK })` gives `{ score, token, tokenStr, sequence }[]`. Loads a masked LM. */
export function pipeline(task: 'fill-mask', nameOrDir: string, options?: PipelineOptions): Promise<FillMaskPipeline>;
/**
 * Continue texts with a causal LM and its tokenizer: `(texts, options)` gives `{ generatedText }[]`,
 * `.stream(text)` the continuation in pieces; defaults from the folder's `generation_config.json`.
 */
export function pipeline(task: 'text-generation', nameOrDir: string, options?: PipelineOptions): Promise<TextGenerationPipeline>;
/**
 * Build the pipeline for `task` from a model folder or a Hugging Face hub name (`'org/name'`,
 * fetched through the shared cache with its tokenizer files; `options` are `fromHfHub`'s).
 * Unknown tasks and option keys are errors naming the nearest valid one. Call `dispose()` on
 * the result to free the model's weights.
 */
export function pipeline(task: PipelineTask, nameOrDir: string, options?: PipelineOptions): Promise<Pipeline>;
export async function pipeline(task: PipelineTask, nameOrDir: string, options: PipelineOptions = {}): Promise<Pipeline> {
  switch (task) {
    case 'feature-extraction':
      return loadFeatureExtractionPipeline(nameOrDir, options);
    case 'fill-mask':
      return loadFillMaskPipeline(nameOrDir, options);
    case 'text-generation':
      return loadTextGenerationPipeline(nameOrDir, options);
    default:
      throw new UnknownTaskError(String(task), nearestTask(String(task)));
  }
}

/** The task `task` is likely a misspelling of (`fill_mask`, `feature_extraction`), if any is close. */
function nearestTask(task: string): string | undefined {
  const [nearest] = nearestNames(task, PIPELINE_TASKS, 1);
  return nearest !== undefined && editDistance(task, nearest) <= Math.max(2, Math.floor(task.length / 2)) ? nearest : undefined;
}
