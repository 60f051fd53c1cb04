/**
 * How an architecture names its parameters in checkpoints: ordered rules from a checkpoint name
 * to a Tessera path. Each architecture's `hf.ts` declares its names once, as a {@link NameMap}
 * that gives the rules both ways: HF -> Tessera for loading, Tessera -> HF for exporting.
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

/**
 * One parameter name in both spellings: `[HF template, Tessera template]`. A template is the
 * literal name with placeholders that stand for the same text on both sides: `{layer}` and
 * `{expert}` match an index, `{name:a|b}` matches one of the listed words (declared on either
 * side, referred to as `{name}` on the other). E.g.
 * `['layers.{layer}.self_attn.q_proj.{param:weight|bias}', 'layers.{layer}.mixer.query.{param}']`.
 */
export type NamePair = readonly [hf: string, tessera: string];

/** An architecture's HF names, declared once (see {@link nameMap}). */
export interface NameMapSpec {
  /**
   * HF's `base_model_prefix` with its dot (`model.`, `backbone.`, `bert.`): the base model's
   * names carry it inside a class with a head (`LlamaForCausalLM`), not in the base class
   * (`LlamaModel`). Optional when loading, as in HF.
   */
  prefix?: string;
  /** The base model's names, without the prefix. */
  base: readonly NamePair[];
  /** Names outside the base model (`lm_head.weight`), never prefixed. */
  head?: readonly NamePair[];
  /**
   * Older spellings that are read but never written (HF renames them on load too), as one-way
   * rules from the old name to the Tessera path; they are tried before the pairs.
   */
  legacy?: RenameRules;
}

/** An architecture's names both ways, compiled from one {@link NameMapSpec}. */
export interface NameMap {
  /** HF name -> Tessera path: legacy spellings, then the pairs with the prefix optional. */
  readonly toTessera: RenameRules;
  /** Tessera path -> HF name, for the base class (`prefixed: false`) or a class with a head. */
  toHf(prefixed: boolean): RenameRules;
}

const INDEX = String.raw`\d+`;
const PLACEHOLDER = /\{(\w+)(?::([\w|]+))?\}/g;

/** Compile the pairs of `spec` into rules both ways (see {@link NamePair} for the templates). */
export function nameMap(spec: NameMapSpec): NameMap {
  const prefix = spec.prefix ?? '';
  const optionalPrefix = prefix === '' ? '' : `(?:${escape(prefix)})?`;
  const pairs = [...spec.base.map((p) => ({ pair: p, base: true })), ...(spec.head ?? []).map((p) => ({ pair: p, base: false }))];
  const compiled = pairs.map(({ pair: [hf, tessera], base }) => {
    const choices = placeholderPatterns(hf, tessera);
    return { hf: template(hf, choices), tessera: template(tessera, choices), base };
  });
  const toTessera: RenameRules = [
    ...(spec.legacy ?? []),
    ...compiled.map(({ hf, tessera, base }) => [new RegExp(`^${base ? optionalPrefix : ''}${hf.pattern}$`), tessera.replacement] as const),
  ];
  const toHf = (prefixed: boolean): RenameRules =>
    compiled.map(({ hf, tessera, base }) => [new RegExp(`^${tessera.pattern}$`), `${base && prefixed ? prefix : ''}${hf.replacement}`] as const);
  return { toTessera, toHf };
}

/** Each placeholder's pattern: an index, or the words one side lists; unknown names are an error. */
function placeholderPatterns(...templates: string[]): Map<string, string> {
  const patterns = new Map<string, string>([['layer', INDEX], ['expert', INDEX]]);
  for (const t of templates) {
    for (const [, name, words] of t.matchAll(PLACEHOLDER)) {
      if (words !== undefined) patterns.set(name!, words.split('|').map(escape).join('|'));
    }
  }
  for (const t of templates) {
    for (const [, name] of t.matchAll(PLACEHOLDER)) {
      if (!patterns.has(name!)) throw new Error(`name template '${t}': placeholder '{${name}}' is neither {layer}, {expert} nor listed as {${name}:a|b} on either side`);
    }
  }
  return patterns;
}

/** A template as a regex source with named groups, and as a replacement string using them. */
function template(text: string, patterns: Map<string, string>): { pattern: string; replacement: string } {
  let pattern = '';
  let replacement = '';
  let at = 0;
  for (const m of text.matchAll(PLACEHOLDER)) {
    const literal = text.slice(at, m.index);
    pattern += escape(literal);
    replacement += literal.replaceAll('$', '$$$$');
    const seen = pattern.includes(`(?<${m[1]}>`);
    // A placeholder used twice in one template must match the same text both times.
    pattern += seen ? `\\k<${m[1]}>` : `(?<${m[1]}>${patterns.get(m[1]!)})`;
    replacement += `$<${m[1]}>`;
    at = m.index! + m[0].length;
  }
  const tail = text.slice(at);
  return { pattern: pattern + escape(tail), replacement: replacement + tail.replaceAll('$', '$$$$') };
}

function escape(literal: string): string {
  return literal.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
