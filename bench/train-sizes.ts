/**
 * Issue 14's training sizes, in one place: the train benchmark (`bench/train.ts`, and
 * `bench/profile.ts train` through it) times them and `examples/distill.ts --size small` distils
 * them, so the two cannot drift apart.
 */

/** Batch × length of the training batch. */
export type TrainBatch = readonly [number, number];

/** The issue's sizes; `quick` keeps the shapes' kinds but shrinks them for the smoke test. */
export function trainSizes(quick: boolean) {
  const vocab = quick ? 256 : 32000;
  return {
    student: quick
      ? { model_type: 'llama', vocab_size: vocab, hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 4, intermediate_size: 64 }
      : { model_type: 'llama', vocab_size: vocab, hidden_size: 512, num_hidden_layers: 4, num_attention_heads: 8, num_key_value_heads: 8, intermediate_size: 1376 },
    teacher: quick
      ? { model_type: 'llama', vocab_size: vocab, hidden_size: 48, num_hidden_layers: 6, num_attention_heads: 4, num_key_value_heads: 2, intermediate_size: 64 }
      : { model_type: 'llama', vocab_size: vocab, hidden_size: 768, num_hidden_layers: 12, num_attention_heads: 12, num_key_value_heads: 4, intermediate_size: 2048 },
    mamba: quick
      ? { model_type: 'mamba', vocab_size: vocab, hidden_size: 32, num_hidden_layers: 2, state_size: 16, conv_kernel: 4, expand: 2 }
      : { model_type: 'mamba', vocab_size: vocab, hidden_size: 512, num_hidden_layers: 4, state_size: 16, conv_kernel: 4, expand: 2 },
    batch: (quick ? [2, 8] : [4, 128]) as TrainBatch,
  };
}

/** The layer pairs: student layer i learns teacher layer 3i + 2. */
export function trainLayerMap(studentLayers: number): [number, number][] {
  return Array.from({ length: studentLayers }, (_, i) => [i, 3 * i + 2]);
}
