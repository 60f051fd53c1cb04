/**
 * How an architecture names its parameters in checkpoints: ordered rules from a checkpoint name
 * to a Tessera path. Each architecture's `hf.ts` holds its rules; the loaders apply them.
 */

/** Ordered rename rules from checkpoint names to Tessera paths; the first match wins. */
export type RenameRules = ReadonlyArray<readonly [RegExp, string]>;

/** Map a checkpoint name to a Tessera parameter path, or undefined when no rule matches. */
export function renameParameter(name: string, rules: RenameRules): string | undefined {
  for (const [pattern, replacement] of rules) {
    if (pattern.test(name)) return name.replace(pattern, replacement);
  }
  return undefined;
}
