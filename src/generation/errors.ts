/** Errors of generation that callers may want to tell apart. */

/**
 * The logits a token would be chosen from hold NaN or +Infinity, or are all -Infinity: no token
 * can be picked from them (greedy would return token 0 forever). The model's weights or a hook
 * produced them. -Infinity alone is allowed: it is the usual way to forbid a token.
 */
export class NonFiniteLogitsError extends Error {
  override name = 'NonFiniteLogitsError';

  constructor(
    /** The generation step (0 = the token after the prompt). */
    readonly step: number,
    /** The batch row (prompt index). */
    readonly row: number,
    /** The position id of the token whose logits these are. */
    readonly position: number,
    /** What was found, e.g. `NaN at token 0`. */
    readonly found: string,
  ) {
    super(
      `the logits of row ${row} at step ${step} (after position ${position}) are not usable: ${found}. ` +
        'No token can be chosen from them; check the model weights (e.g. NaN in the checkpoint) and any hooks that change activations.',
    );
  }
}

/**
 * A {@link GenerationCache} was used with a model other than the one whose state it holds. The
 * cache is keyed by the first model that ran with it (its clones and snapshots with the same one).
 */
export class CacheModelMismatchError extends Error {
  override name = 'CacheModelMismatchError';

  constructor(
    /** The model the cache belongs to, in words. */
    readonly owner: string,
    /** The model it was used with, in words. */
    readonly model: string,
  ) {
    super(
      `this GenerationCache belongs to ${owner} (the model that first ran with it) and cannot be used with ${model}; ` +
        'a cache holds one model\'s KV caches and Mamba states. Use a new GenerationCache for this model.',
    );
  }
}

/**
 * `generate` ran a mixer that kept no state in the generation cache during the prompt's forward.
 * Each decode step feeds only the newest token, so such a mixer (a user's own one that ignores
 * `ctx.cache`) would compute every later token without the tokens before it: the output would
 * be wrong without any sign. Thrown after the prompt's forward, before any token is handed out.
 */
export class StatelessMixerError extends Error {
  override name = 'StatelessMixerError';

  constructor(
    /** The mixers' paths, e.g. `layers.0.mixer`. */
    readonly mixers: readonly string[],
    /** Their classes, in the same order. */
    readonly classes: readonly string[],
  ) {
    const list = mixers.map((path, i) => `${path} (${classes[i]})`).join(', ');
    super(
      `${list} stored no state in the generation cache, so decoding token by token would see only the newest token. ` +
        'A mixer used with generate must keep what it needs between calls with ctx.cache.get(this) / ctx.cache.set(this, {...}) ' +
        '(docs/hybrids.md); to score whole sequences without a cache, call forward instead.',
    );
  }
}

/**
 * Text was given to generate (or streamText) on a model without a tokenizer: nothing can turn the
 * text into token ids.
 */
export class NoTokenizerError extends Error {
  override name = 'NoTokenizerError';

  constructor(
    /** The model, in words. */
    readonly model: string,
    /** The method called. */
    readonly method: string,
  ) {
    super(
      `${model} has no tokenizer attached, so ${method}() cannot take text. Load the model with ` +
        "AutoCausalLM.fromDir(dir, { tokenizer: true }) (or fromHfHub/fromPretrained), or call lm.attachTokenizer(await AutoTokenizer.fromDir(dir)); " +
        'token ids work without one: lm.generate([[1, 2, 3]]).',
    );
  }
}
