import { Layer, type Module } from '../layers/module.js';
import { nearestNames } from '../util/suggest.js';

/** A resolved hook point: the module that runs it and the point inside it ('' = its output). */
export interface HookTarget {
  /** Full dotted name, e.g. `layers.3.mixer` or `layers.3.mixer.scores`. */
  name: string;
  module: Module;
  /** '' for the module's own output (and input, for pre-hooks), otherwise a tap name. */
  point: string;
}

/**
 * Every hook point of a model, in module-tree order (a module, then its taps, then its children):
 * each layer's path (its output) and each tap a layer declares, as `<path>.<tap>`. Containers
 * without a forward of their own (the model root, `layers`) are not points.
 */
export function hookTargets(model: Module): Map<string, HookTarget> {
  const targets = new Map<string, HookTarget>();
  const add = (target: HookTarget): void => {
    const clash = targets.get(target.name);
    if (clash !== undefined) {
      // Two things answering to one name would make a hook fire somewhere the user did not mean.
      throw new Error(
        `hook point '${target.name}' is declared twice (${describe(clash)} and ${describe(target)}); rename the tap`,
      );
    }
    targets.set(target.name, target);
  };
  // namedModules() also refreshes every module's path, which hooks report as their name.
  for (const [path, module] of model.namedModules()) {
    const isLayer = module instanceof Layer;
    for (const point of module.ownHookPoints()) {
      if (point === '' && (!isLayer || path === '')) continue;
      const name = point === '' ? path : path === '' ? point : `${path}.${point}`;
      add({ name, module, point });
    }
  }
  return targets;
}

function describe(target: HookTarget): string {
  return target.point === '' ? `the output of module '${target.name}'` : `tap '${target.point}' of ${target.module.constructor.name}`;
}

/** Resolve one name, or throw an error listing the nearest valid names. */
export function resolveHookPoint(model: Module, name: string, targets = hookTargets(model)): HookTarget {
  const found = targets.get(name);
  if (found !== undefined) return found;
  const names = [...targets.keys()];
  const nearest = nearestNames(name, names);
  throw new Error(
    `unknown hook point '${name}'; did you mean ${nearest.map((n) => `'${n}'`).join(', ')}? ` +
      `(model.hookPoints() lists all ${names.length})`,
  );
}

/** Which points to act on: a list of names, a RegExp, or a predicate over names. */
export type HookPointSelector = readonly string[] | RegExp | ((name: string) => boolean);

/**
 * The hook points a selector picks, in model order. Names in a list must exist (nearest names are
 * suggested); a RegExp or predicate that picks nothing is an error too, since capturing nothing
 * is almost always a typo.
 */
export function selectHookPoints(model: Module, selector: HookPointSelector): HookTarget[] {
  const targets = hookTargets(model);
  if (Array.isArray(selector)) {
    const unique = [...new Set(selector as readonly string[])];
    return unique.map((name) => resolveHookPoint(model, name, targets));
  }
  // A stateless copy of the RegExp: with the g or y flag, test() would resume from lastIndex.
  const pattern = selector instanceof RegExp ? new RegExp(selector.source, selector.flags.replace(/[gy]/g, '')) : undefined;
  const test = pattern !== undefined ? (name: string) => pattern.test(name) : (selector as (name: string) => boolean);
  const picked = [...targets.values()].filter((t) => test(t.name));
  if (picked.length === 0) {
    const shown = selector instanceof RegExp ? String(selector) : 'the predicate';
    throw new Error(`${shown} matches no hook point; model.hookPoints() lists them (e.g. ${[...targets.keys()].slice(0, 4).join(', ')})`);
  }
  return picked;
}
