import * as tf from '@tensorflow/tfjs-core';
import type { ModelKind } from '../architectures/architecture.js';
import { architectureRegistry } from '../architectures/registry.js';
import { AutoEncoder, AutoMaskedLM } from '../loaders/auto.js';
import { readConfig } from '../loaders/checkpoint.js';
import type { AutoTokenizer } from '../loaders/tokenizer.js';
import type { TransformerModel } from '../models/transformer.js';
import { checkKeys, type KeyList } from '../util/options.js';
import { checkPositiveInteger, pipelineSource, textList, type PipelineOptions } from './load.js';

/** How token vectors become one vector per text. */
export type Pooling = 'mean' | 'cls' | 'none';

/** Options of a feature-extraction call that pools: one vector per text. */
export interface PooledExtractionOptions {
  /**
   * `'mean'` (default): the mean of the token vectors, padding excluded by the attention mask (as
   * sentence-transformers); `'cls'`: the first token's vector.
   */
  pooling?: 'mean' | 'cls';
  /** Scale each vector to unit length (L2), for cosine similarity by dot product. Default false. */
  normalize?: boolean;
  /** Texts run through the model at once, padded to the longest of them. Default 32. */
  batchSize?: number;
}

/** Options of a feature-extraction call that keeps every token's vector. */
export interface TokenExtractionOptions {
  /** `'none'`: one vector per token (special tokens included, padding dropped). */
  pooling: 'none';
  /** Scale each token vector to unit length. Default false. */
  normalize?: boolean;
  /** Texts run through the model at once. Default 32. */
  batchSize?: number;
}

/** Options of a feature-extraction call. */
export type FeatureExtractionOptions = PooledExtractionOptions | TokenExtractionOptions;

const CALL_OPTION_KEYS = { pooling: true, normalize: true, batchSize: true } as const satisfies KeyList<PooledExtractionOptions>;
const POOLINGS: readonly Pooling[] = ['mean', 'cls', 'none'];
const DEFAULT_BATCH_SIZE = 32;

/**
 * Texts to vectors with an encoder's last hidden state (`pipeline('feature-extraction', ...)`).
 * Results are plain arrays; no tensor outlives a call. A batch is padded to its longest text and
 * gives the same vectors as the texts one by one.
 */
export interface FeatureExtractionPipeline {
  /** One text: its token vectors `[tokens][hidden]`. */
  (text: string, options: TokenExtractionOptions): Promise<number[][]>;
  /** Texts: each text's token vectors `[text][tokens][hidden]` (rows differ in length). */
  (texts: string[], options: TokenExtractionOptions): Promise<number[][][]>;
  /** One text: its vector `[hidden]`. */
  (text: string, options?: PooledExtractionOptions): Promise<number[]>;
  /** Texts: one vector per text `[text][hidden]`. */
  (texts: string[], options?: PooledExtractionOptions): Promise<number[][]>;
  /** Options chosen at run time (a {@link Pooling} variable): the result's shape follows `pooling` as above. */
  (input: string | string[], options?: FeatureExtractionOptions): Promise<number[] | number[][] | number[][][]>;
  readonly task: 'feature-extraction';
  readonly model: TransformerModel;
  readonly tokenizer: AutoTokenizer;
  /** Free the model's weights; later calls throw `ModelDisposedError`. */
  dispose(): void;
}

/** The kind a folder's model is loaded as: a masked-LM checkpoint as one (it has no pooler), else an encoder. */
function encoderKind(config: Record<string, unknown>, dir: string): ModelKind {
  const architecture = architectureRegistry().forConfig(config, `${dir}/config.json`);
  const declared = Array.isArray(config.architectures) ? (config.architectures as unknown[]) : [];
  if (architecture.kinds.includes('masked-lm') && declared.some((a) => typeof a === 'string' && a.endsWith('ForMaskedLM'))) return 'masked-lm';
  if (architecture.kinds.includes('encoder')) return 'encoder';
  throw new Error(`feature-extraction needs an encoder (BERT); ${dir} holds a '${architecture.name}' model, which Tessera loads only as ${architecture.kinds.join(' or ')}`);
}

/** Load the feature-extraction pipeline for a folder or hub name (see `pipeline`). */
export async function loadFeatureExtractionPipeline(nameOrDir: string, options: PipelineOptions = {}): Promise<FeatureExtractionPipeline> {
  const source = await pipelineSource('feature-extraction', nameOrDir, options);
  const { dir, load } = source;
  const kind = encoderKind(await readConfig(dir), dir);
  const tokenizer = await source.tokenizer();
  const model: TransformerModel = kind === 'masked-lm' ? await AutoMaskedLM.fromDir(dir, load) : await AutoEncoder.fromDir(dir, load);
  // async, so that bad input rejects the returned promise rather than throwing at the call.
  const extract = async (input: string | string[], opts: FeatureExtractionOptions = {}): Promise<unknown> => run(model, tokenizer, input, opts);
  return Object.assign(extract, {
    task: 'feature-extraction' as const,
    model,
    tokenizer,
    dispose: () => model.dispose(),
  }) as FeatureExtractionPipeline;
}

function run(model: TransformerModel, tokenizer: AutoTokenizer, input: unknown, opts: FeatureExtractionOptions): unknown {
  checkKeys(opts, CALL_OPTION_KEYS, 'feature-extraction options');
  const pooling = opts.pooling ?? 'mean';
  if (!POOLINGS.includes(pooling)) throw new Error(`feature-extraction: pooling must be one of ${POOLINGS.map((p) => `'${p}'`).join(', ')}, got ${JSON.stringify(pooling)}`);
  if (opts.normalize !== undefined && typeof opts.normalize !== 'boolean') throw new Error(`feature-extraction: normalize must be true or false, got ${JSON.stringify(opts.normalize)}`);
  checkPositiveInteger(opts.batchSize, 'feature-extraction: batchSize');
  model.assertNotDisposed('feature-extraction');
  const { texts, single } = textList(input, 'feature-extraction');
  const batchSize = opts.batchSize ?? DEFAULT_BATCH_SIZE;
  const out: unknown[] = [];
  for (let i = 0; i < texts.length; i += batchSize) out.push(...extractBatch(model, tokenizer, texts.slice(i, i + batchSize), pooling, opts.normalize ?? false));
  return single ? out[0] : out;
}

/** Vectors of one padded batch, as plain arrays (token rows without their padding). */
function extractBatch(model: TransformerModel, tokenizer: AutoTokenizer, texts: string[], pooling: Pooling, normalize: boolean): number[][] | number[][][] {
  const enc = tokenizer.encode(texts);
  try {
    const vectors = tf.tidy(() => {
      const { lastHiddenState } = model.forwardHidden(enc.inputIds, { attentionMask: enc.attentionMask, tokenTypeIds: enc.tokenTypeIds });
      const pooled = pool(lastHiddenState, enc.attentionMask, pooling);
      return normalize ? unitLength(pooled) : pooled;
    });
    const values = vectors.arraySync();
    vectors.dispose();
    if (pooling !== 'none') return values as number[][];
    const mask = enc.attentionMask.arraySync();
    return (values as number[][][]).map((rows, b) => rows.filter((_, t) => mask[b]![t] === 1));
  } finally {
    tf.dispose([enc.inputIds, enc.attentionMask, enc.tokenTypeIds]);
  }
}

/** [B, L, H] hidden states to [B, H] (mean over unmasked tokens, or the first token) or as they are. */
function pool(hidden: tf.Tensor3D, mask: tf.Tensor2D, pooling: Pooling): tf.Tensor {
  if (pooling === 'none') return hidden;
  const [batch, , size] = hidden.shape;
  if (pooling === 'cls') return tf.reshape(tf.slice(hidden, [0, 0, 0], [batch, 1, size]), [batch, size]);
  const weights = tf.expandDims(tf.cast(mask, 'float32'), 2); // [B, L, 1]: 1 for tokens, 0 for padding
  return tf.div(tf.sum(tf.mul(hidden, weights), 1), tf.sum(weights, 1));
}

/** Each vector over the last axis divided by its L2 norm (floored at 1e-12, as torch's F.normalize). */
function unitLength(x: tf.Tensor): tf.Tensor {
  return tf.div(x, tf.maximum(tf.sqrt(tf.sum(tf.square(x), -1, true)), 1e-12));
}
