import { editDistance, nearestNames } from './suggest.js';

/**
 * The keys of an options type as a value, written `{ a: true, b: true } satisfies KeyList<Options>`:
 * the compiler rejects a missing or an extra key, so the list checked at run time cannot drift
 * from the interface users type against.
 */
export type KeyList<T> = { readonly [K in keyof Required<T>]: true };

/** An options object or config held a key its reader does not know. */
export class UnknownKeyError extends Error {
  override name = 'UnknownKeyError';

  constructor(
    /** Where the object sits, as a user would write it (`generate options`, `hybrid config layers[1]`). */
    readonly where: string,
    /** The unknown key. */
    readonly key: string,
    /** The nearest valid key by edit distance; undefined when none is close. */
    readonly suggestion: string | undefined,
    /** Every valid key, listed in the message when none is close. */
    readonly known: readonly string[],
  ) {
    super(`${where}: unknown key '${key}'; ${suggestion === undefined ? `valid keys: ${known.join(', ')}` : `did you mean '${suggestion}'?`}`);
  }
}

/**
 * Throw {@link UnknownKeyError} for the first key of `value` not in `known`, naming the nearest
 * known key. A misspelt option would otherwise be ignored and its default used without a word.
 * Non-objects (undefined, arrays) pass: their own checks say what is wrong with them.
 */
export function checkKeys(value: unknown, known: KeyList<object> | readonly string[], where: string): void {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return;
  const names = Array.isArray(known) ? (known as readonly string[]) : Object.keys(known);
  for (const key of Object.keys(value)) {
    if (names.includes(key)) continue;
    const [nearest] = nearestNames(key, names, 1);
    // A suggestion further than half the key's length away is noise, not a likely typo, unless
    // one name spells the other out (`epsilon` for `eps`).
    const close =
      nearest !== undefined &&
      (editDistance(key, nearest) <= Math.max(2, Math.floor(key.length / 2)) || key.startsWith(nearest) || nearest.startsWith(key));
    throw new UnknownKeyError(where, key, close ? nearest : undefined, names);
  }
}
