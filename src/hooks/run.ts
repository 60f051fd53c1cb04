import * as tf from '@tensorflow/tfjs-core';
import type { HookFn, HookHandle, Module } from '../layers/module.js';
import type { Model } from '../models/model.js';
import { FORWARD_OPTION_KEYS, type ForwardOptions } from '../models/transformer.js';
import { checkKeys, type KeyList } from '../util/options.js';
import { ActivationCache } from './activation-cache.js';
import { hookTargets, resolveHookPoint, selectHookPoints, type HookPointSelector } from './hook-points.js';

/** Every hook point name of `model` (see {@link hookTargets} for what counts). */
export function hookPoints(model: Module): string[] {
  return [...hookTargets(model).keys()];
}

/**
 * Hook the output of the point `name`. The hook may return a tensor of the same shape and dtype
 * to replace the value downstream. Hooks on one point run in the order they were added.
 */
export function addHook(model: Module, name: string, fn: HookFn): HookHandle {
  const target = resolveHookPoint(model, name);
  return target.module.attachHook(target.point, 'post', fn);
}

/** Hook the input of the module at `name` (taps have no input of their own). */
export function addPreHook(model: Module, name: string, fn: HookFn): HookHandle {
  const target = resolveHookPoint(model, name);
  if (target.point !== '') {
    throw new Error(`'${name}' is a tap inside a module and has no input; pre-hooks attach to modules, e.g. '${target.module.path}'`);
  }
  return target.module.attachHook('', 'pre', fn);
}

/** One hook for {@link runWithHooks}. */
export interface HookSpec {
  name: string;
  fn: HookFn;
  /** Run on the module's input instead of its output. */
  pre?: boolean;
}

const HOOK_SPEC_KEYS = { name: true, fn: true, pre: true } as const satisfies KeyList<HookSpec>;

/**
 * Run `model.forward` with `hooks` attached, and detach them afterwards whatever happens. All
 * names are checked before any hook is attached.
 */
export function runWithHooks<O>(
  model: Model<O>,
  inputIds: tf.Tensor2D,
  hooks: readonly HookSpec[] | Readonly<Record<string, HookFn>>,
  options: ForwardOptions = {},
): O {
  const specs: readonly HookSpec[] = Array.isArray(hooks)
    ? (hooks as readonly HookSpec[])
    : Object.entries(hooks).map(([name, fn]) => ({ name, fn }));
  if (Array.isArray(hooks)) specs.forEach((spec, i) => checkKeys(spec, HOOK_SPEC_KEYS, `runWithHooks hooks[${i}]`));
  const targets = hookTargets(model);
  const resolved = specs.map((spec) => {
    const target = resolveHookPoint(model, spec.name, targets);
    if (spec.pre === true && target.point !== '') {
      throw new Error(`'${spec.name}' is a tap inside a module and has no input; a pre-hook needs a module name`);
    }
    return { target, spec };
  });
  const handles: HookHandle[] = [];
  try {
    for (const { target, spec } of resolved) {
      handles.push(target.module.attachHook(target.point, spec.pre === true ? 'pre' : 'post', spec.fn));
    }
    return model.forward(inputIds, options);
  } finally {
    for (const handle of handles) handle.remove();
  }
}

/** Options of {@link runWithCache}: the forward's own options plus what to capture. */
export interface RunWithCacheOptions extends ForwardOptions {
  /**
   * The hook points to capture: names, a RegExp over names or a predicate. Default: every point,
   * which on a large model holds many tensors; ask only for what you need.
   */
  names?: HookPointSelector;
}

const RUN_WITH_CACHE_OPTION_KEYS = { ...FORWARD_OPTION_KEYS, names: true } as const satisfies KeyList<RunWithCacheOptions>;

/** What {@link runWithCache} returns: the forward's own output and the captured activations. */
export interface CachedRun<O> {
  /** The model's output; the caller owns its tensors (see `disposeOutput`). */
  output: O;
  /** The captured activations; the caller disposes the cache. */
  cache: ActivationCache;
}

/**
 * Run `model.forward` and capture the activations at the selected hook points. Captures see any
 * replacement made by hooks added earlier. Gradients flow through captured tensors, so a loss on
 * them trains the model when the call runs inside `tf.variableGrads` / `optimizer.minimize`.
 */
export function runWithCache<O>(
  model: Model<O>,
  inputIds: tf.Tensor2D,
  options: RunWithCacheOptions = {},
): CachedRun<O> {
  // Checked before anything is attached: a misspelt `names` would otherwise capture every point.
  checkKeys(options, RUN_WITH_CACHE_OPTION_KEYS, 'runWithCache options');
  const { names, ...forwardOptions } = options;
  const targets = names === undefined ? [...hookTargets(model).values()] : selectHookPoints(model, names);
  const cache = new ActivationCache();
  const handles = targets.map((target) =>
    target.module.attachHook(target.point, 'post', (value) => {
      // A kept clone (no data copy): it escapes the forward's tidy scopes, and the cache owns it
      // separately from the output (which may hold the same value).
      cache.store(target.name, tf.keep(tf.clone(value)));
    }),
  );
  try {
    return { output: model.forward(inputIds, forwardOptions), cache };
  } catch (err) {
    cache.dispose();
    throw err;
  } finally {
    for (const handle of handles) handle.remove();
  }
}
