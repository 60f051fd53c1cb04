/**
 * Typed reads of HF config keys with errors that name the key; architectures' config parsers use
 * these so a bad config.json says exactly what is wrong.
 */
export class ConfigReader {
  constructor(
    private readonly raw: Record<string, unknown>,
    private readonly what: string,
  ) {}

  has(key: string): boolean {
    return this.raw[key] !== undefined && this.raw[key] !== null;
  }

  number(key: string, fallback?: number): number {
    const v = this.raw[key] ?? fallback;
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      throw new Error(`${this.what} config: '${key}' must be a number, got ${JSON.stringify(this.raw[key])}`);
    }
    return v;
  }

  integer(key: string, fallback?: number): number {
    const v = this.number(key, fallback);
    if (!Number.isInteger(v) || v < 0) throw new Error(`${this.what} config: '${key}' must be a non-negative integer, got ${v}`);
    return v;
  }

  string(key: string, fallback?: string): string {
    const v = this.raw[key] ?? fallback;
    if (typeof v !== 'string') throw new Error(`${this.what} config: '${key}' must be a string, got ${JSON.stringify(this.raw[key])}`);
    return v;
  }

  boolean(key: string, fallback?: boolean): boolean {
    const v = this.raw[key] ?? fallback;
    if (typeof v !== 'boolean') throw new Error(`${this.what} config: '${key}' must be true or false, got ${JSON.stringify(this.raw[key])}`);
    return v;
  }

  object(key: string): Record<string, unknown> | undefined {
    const v = this.raw[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'object' || Array.isArray(v)) throw new Error(`${this.what} config: '${key}' must be an object`);
    return v as Record<string, unknown>;
  }
}
