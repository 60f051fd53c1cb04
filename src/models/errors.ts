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
