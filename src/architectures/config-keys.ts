/**
 * Bounds on what a config may ask for. They sit far above every published model and far below
 * what would make Tessera allocate gigabytes or loop for minutes on a typo (`hidden_size: 1e9`):
 *
 * - `dimension` (2^20 = 1,048,576): any width, vocabulary, head count, head size, state size,
 *   kernel width, rank or learned-position table. The largest published vocabularies are ~2^18
 *   (262,144) and the widest hidden sizes ~2^15, so 2^20 leaves 4x headroom; it also keeps the
 *   product of two dimensions (one weight matrix) below 2^40, exact in a float64.
 * - `layers` (2^12 = 4096): blocks in a model. Published models have at most a few hundred;
 *   every layer costs a handful of tensors and JS objects however narrow it is.
 * - `experts` (2^10 = 1024): experts in a mixture-of-experts layer (published: up to 384).
 * - `positions` (2^24 ≈ 16.8M): `max_position_embeddings` of a rotary model, which allocates
 *   nothing per position (published: up to 10M). Learned position tables are dimensions.
 * - `tensors` (2^17 = 131,072): parameter tensors in a whole model (published MoE models: ~50k);
 *   creating that many takes about a second, so no config can make construction hang.
 */
export const CONFIG_LIMITS = {
  dimension: 2 ** 20,
  layers: 2 ** 12,
  experts: 2 ** 10,
  positions: 2 ** 24,
  tensors: 2 ** 17,
} as const;

/** A config value Tessera cannot build a model from; the message names the key and the fix. */
export class ConfigError extends Error {
  constructor(
    message: string,
    /** The offending config key, where one key is to blame. */
    readonly key?: string,
  ) {
    super(message);
    this.name = 'ConfigError';
  }
}

const show = (v: unknown): string => (v === undefined ? 'nothing' : JSON.stringify(v));

/**
 * Typed reads of HF config keys with errors that name the key; architectures' config parsers use
 * these so a bad config.json says exactly what is wrong. Values are never coerced: `"12"`, `1.5`
 * or `null` where an integer belongs is an error, not 12, 1 or the default. A key that is absent
 * (undefined) takes the fallback; one set to `null` is an error unless read with {@link has} first
 * (HF treats `null` as "derive it" only for a few keys, e.g. `head_dim`).
 */
export class ConfigReader {
  constructor(
    private readonly raw: Record<string, unknown>,
    private readonly what: string,
  ) {}

  /** Whether `key` is set to something other than null. */
  has(key: string): boolean {
    return this.raw[key] !== undefined && this.raw[key] !== null;
  }

  /** A {@link ConfigError} prefixed with what is being read: `llama config: 'key' ...`. */
  error(key: string, message: string): ConfigError {
    return new ConfigError(`${this.what} config: '${key}' ${message}`, key);
  }

  /** The raw value, the fallback when absent; `null` is an error naming the key. */
  private value(key: string, fallback: unknown, expected: string): unknown {
    const v = this.raw[key];
    if (v === null) {
      throw this.error(key, `is null; set ${expected}${fallback === undefined ? '' : ` or leave the key out for the default ${show(fallback)}`}`);
    }
    return v === undefined ? fallback : v;
  }

  number(key: string, fallback?: number): number {
    const v = this.value(key, fallback, 'a number');
    if (typeof v !== 'number' || !Number.isFinite(v)) throw this.error(key, `must be a number, got ${show(this.raw[key])}`);
    return v;
  }

  /** A finite number above 0 (epsilons, rope theta, scaling factors). */
  positive(key: string, fallback?: number): number {
    const v = this.number(key, fallback);
    if (!(v > 0)) throw this.error(key, `must be a number above 0, got ${v}`);
    return v;
  }

  integer(key: string, fallback?: number): number {
    const v = this.number(key, fallback);
    if (!Number.isSafeInteger(v) || v < 0) throw this.error(key, `must be a non-negative integer, got ${v}`);
    return v;
  }

  /**
   * An integer size from `min` (default 1) to `max` (default {@link CONFIG_LIMITS}.dimension):
   * the read every width, count and rank goes through, so a typo fails here, before any tensor.
   */
  size(key: string, fallback?: number, max: number = CONFIG_LIMITS.dimension, min = 1): number {
    const v = this.number(key, fallback);
    if (!Number.isInteger(v) || v < min || v > max) {
      const bound = max === CONFIG_LIMITS.dimension ? ` (Tessera's bound on any model dimension)` : '';
      throw this.error(key, `must be an integer from ${min} to ${max}${bound}, got ${v}`);
    }
    return v;
  }

  string(key: string, fallback?: string): string {
    const v = this.value(key, fallback, 'a string');
    if (typeof v !== 'string') throw this.error(key, `must be a string, got ${show(this.raw[key])}`);
    return v;
  }

  /** A string that must be one of `allowed`. */
  oneOf<T extends string>(key: string, allowed: readonly T[], fallback?: T): T {
    const v = this.string(key, fallback);
    if (!allowed.includes(v as T)) throw this.error(key, `must be one of ${allowed.map((a) => `'${a}'`).join(', ')}, got '${v}'`);
    return v as T;
  }

  boolean(key: string, fallback?: boolean): boolean {
    const v = this.value(key, fallback, 'true or false');
    if (typeof v !== 'boolean') throw this.error(key, `must be true or false, got ${show(this.raw[key])}`);
    return v;
  }

  object(key: string): Record<string, unknown> | undefined {
    const v = this.raw[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'object' || Array.isArray(v)) throw this.error(key, `must be an object, got ${show(v)}`);
    return v as Record<string, unknown>;
  }
}
