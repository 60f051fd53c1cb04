/** Errors of the model classes that callers may want to tell apart. */

/**
 * A model was used after {@link TransformerModel.dispose}: its weights are freed, so it cannot run,
 * save, list hook points or take hooks. Load or build it again.
 */
export class ModelDisposedError extends Error {
  override name = 'ModelDisposedError';

  constructor(
    /** The model, in words: its class and architecture (`CausalLM 'mamba'`). */
    readonly model: string,
    /** The method that was called (`forward`, `generate`, ...). */
    readonly method: string,
  ) {
    super(`${model} was disposed; ${method}() cannot use it (its weights are freed). Load or build the model again.`);
  }
}

/**
 * An id outside the table it indexes: a token id outside the vocabulary, a token type or a
 * learned position beyond its embedding table. It names the tensor, the place and the table size,
 * so the offending id can be found in the batch; tfjs would report only a raw `GatherV2` index
 * (and GPU backends read zeros instead).
 */
export class IdOutOfRangeError extends Error {
  override name = 'IdOutOfRangeError';

  constructor(
    /** The ids' name as the caller wrote them: `inputIds`, `positionIds`, `tokenTypeIds`, `promptIds`. */
    readonly tensor: string,
    /** The row (batch index or prompt number). */
    readonly row: number,
    /** The position within the row. */
    readonly position: number,
    /** The offending value. */
    readonly id: number,
    /** The size of the table: valid ids are 0 to size - 1. */
    readonly size: number,
    /** What the table holds, for the message: `vocabulary`, `token types`, `learned positions`. */
    table: string,
  ) {
    super(`${tensor}[${row}, ${position}] is ${id}, outside the ${table} of ${size} (valid ids 0 to ${size - 1})`);
  }
}
