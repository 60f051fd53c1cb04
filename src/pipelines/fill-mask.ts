import * as tf from '@tensorflow/tfjs-core';
import { AutoMaskedLM } from '../loaders/auto.js';
import type { AutoTokenizer } from '../loaders/tokenizer.js';
import type { MaskedLM } from '../models/masked-lm.js';
import { checkKeys, type KeyList } from '../util/options.js';
import { checkPositiveInteger, pipelineSource, textList, type PipelineOptions } from './load.js';

/** Options of a fill-mask call. */
export interface FillMaskOptions {
  /** How many candidates per text, most likely first. Default 5 (at most the vocabulary size). */
  topK?: number;
}

/** One candidate for the masked token. */
export interface FillMaskResult {
  /** Its probability (softmax over the vocabulary at the mask). */
  score: number;
  /** Its token id. */
  token: number;
  /** The token as text (`tokenizer.decode([token])`). */
  tokenStr: string;
  /** The input with the mask replaced by it, special tokens dropped. */
  sequence: string;
}

const CALL_OPTION_KEYS = { topK: true } as const satisfies KeyList<FillMaskOptions>;
const DEFAULT_TOP_K = 5;

/**
 * The most likely tokens for the mask token of each text, from a masked LM
 * (`pipeline('fill-mask', ...)`). Each text holds exactly one mask token (`[MASK]` for BERT).
 */
export interface FillMaskPipeline {
  /** One text: its candidates, most likely first. */
  (text: string, options?: FillMaskOptions): Promise<FillMaskResult[]>;
  /** Texts: the candidates of each text. */
  (texts: string[], options?: FillMaskOptions): Promise<FillMaskResult[][]>;
  readonly task: 'fill-mask';
  readonly model: MaskedLM;
  readonly tokenizer: AutoTokenizer;
  /** The token a text marks the blank with (`[MASK]`). */
  readonly maskToken: string;
  /** Free the model's weights; later calls throw `ModelDisposedError`. */
  dispose(): void;
}

/** Load the fill-mask pipeline for a folder or hub name holding a masked LM (see `pipeline`). */
export async function loadFillMaskPipeline(nameOrDir: string, options: PipelineOptions = {}): Promise<FillMaskPipeline> {
  const source = await pipelineSource('fill-mask', nameOrDir, options);
  const { dir, load } = source;
  const tokenizer = await source.tokenizer();
  const maskId = tokenizer.inner.mask_token_id;
  const maskToken = tokenizer.inner.mask_token;
  if (typeof maskId !== 'number' || typeof maskToken !== 'string') {
    throw new Error(`fill-mask: the tokenizer in ${dir} has no mask token (mask_token in tokenizer_config.json or special_tokens_map.json)`);
  }
  const model = await AutoMaskedLM.fromDir(dir, load);
  // async, so that bad input rejects the returned promise rather than throwing at the call.
  const unmask = async (input: string | string[], opts: FillMaskOptions = {}): Promise<unknown> => run(model, tokenizer, maskId, maskToken, input, opts);
  return Object.assign(unmask, { task: 'fill-mask' as const, model, tokenizer, maskToken, dispose: () => model.dispose() }) as FillMaskPipeline;
}

function run(model: MaskedLM, tokenizer: AutoTokenizer, maskId: number, maskToken: string, input: unknown, opts: FillMaskOptions): FillMaskResult[] | FillMaskResult[][] {
  checkKeys(opts, CALL_OPTION_KEYS, 'fill-mask options');
  checkPositiveInteger(opts.topK, 'fill-mask: topK');
  model.assertNotDisposed('fill-mask');
  const { texts, single } = textList(input, 'fill-mask');
  const enc = tokenizer.encode(texts);
  try {
    const masks = enc.ids.map((row, i) => {
      const at = row.flatMap((id, t) => (id === maskId ? [t] : []));
      if (at.length !== 1) {
        const what = at.length === 0 ? `has no mask token '${maskToken}'` : `has ${at.length} mask tokens '${maskToken}'; fill-mask fills exactly one per text`;
        throw new Error(`fill-mask: text ${i} (${JSON.stringify(texts[i])}) ${what}`);
      }
      return at[0]!;
    });
    const vocab = model.embeddings.word.count;
    const k = Math.min(opts.topK ?? DEFAULT_TOP_K, vocab);
    const [scores, tokens] = tf.tidy(() => {
      const { logits } = model.forward(enc.inputIds, { attentionMask: enc.attentionMask, tokenTypeIds: enc.tokenTypeIds });
      const atMask = tf.gatherND(logits, masks.map((t, b) => [b, t])) as tf.Tensor2D; // [B, vocab]
      const { values, indices } = tf.topk(tf.softmax(atMask), k);
      return [values, indices];
    });
    const [probs, ids] = [scores.arraySync() as number[][], tokens.arraySync() as number[][]];
    tf.dispose([scores, tokens]);
    const mask = enc.attentionMask.arraySync();
    const results = ids.map((row, b) => {
      const original = enc.ids[b]!.filter((_, t) => mask[b]![t] === 1);
      return row.map((token, j) => ({
        score: probs[b]![j]!,
        token,
        tokenStr: tokenizer.decode([token]),
        sequence: tokenizer.decode(original.map((id, t) => (t === masks[b] ? token : id)), { skipSpecialTokens: true }),
      }));
    });
    return single ? results[0]! : results;
  } finally {
    tf.dispose([enc.inputIds, enc.attentionMask, enc.tokenTypeIds]);
  }
}
