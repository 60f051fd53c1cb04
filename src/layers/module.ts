import * as tf from '@tensorflow/tfjs-core';
import '../tf-chained.js';
import type { ForwardContext } from './context.js';
import { disposeWeight } from '../ops/derived-weights.js';

/**
 * A forward hook: sees a module's output (or, as a pre-hook, its input) and may return a tensor
 * of the same shape to replace it downstream. Returning nothing leaves the value unchanged.
 */
export type HookFn = (value: tf.Tensor, ctx: HookContext) => tf.Tensor | void;

/** What a hook is told about the call it runs in. */
export interface HookContext {
  /** Dotted path of the hooked point, e.g. `layers.3.mixer`. */
  name: string;
  /** The forward context of this call (masks, caches). */
  forward: ForwardContext;
}

/** A registered hook; {@link HookHandle.remove} detaches it. */
export interface HookHandle {
  remove(): void;
}

interface HookEntry {
  kind: 'pre' | 'post';
  fn: HookFn;
}

/**
 * A node of the module tree: named parameters (`tf.Variable`s, so they can be trained) and named
 * child modules. Paths are dotted: `layers.3.mixer.inProj.weight`.
 */
export class Module {
  private readonly params = new Map<string, tf.Variable>();
  private readonly children = new Map<string, Module>();
  /** Hooks keyed by point name: '' is this module's own output, other keys are named taps inside it. */
  private readonly hooks = new Map<string, HookEntry[]>();
  /** Intermediate values this module exposes as hook points beside its output (see {@link tap}). */
  protected readonly tapNames: string[] = [];
  /** Path given by the parent at registration; the root's is ''. Completed by {@link namedModules}. */
  private ownPath = '';

  /** Register a parameter initialised from `value` (the module takes ownership of a new variable). */
  protected addParameter(name: string, value: tf.Tensor, trainable = true): tf.Variable {
    if (this.params.has(name) || this.children.has(name)) throw new Error(`duplicate member '${name}'`);
    const variable = tf.variable(value, trainable);
    value.dispose();
    this.params.set(name, variable);
    return variable;
  }

  /** Register a child module under `name`; its parameters appear as `name.<param>`. */
  protected addModule<M extends Module>(name: string, module: M): M {
    if (this.params.has(name) || this.children.has(name)) throw new Error(`duplicate member '${name}'`);
    this.children.set(name, module);
    return module;
  }

  /** Declare named intermediate values (e.g. `scores`) that hooks can observe or replace. */
  protected declareTaps(...names: string[]): void {
    this.tapNames.push(...names);
  }

  /** This module's full dotted path in the tree it was last listed from ('' for the root). */
  get path(): string {
    return this.ownPath;
  }

  /** Direct children, in registration order. */
  namedChildren(): [string, Module][] {
    return [...this.children.entries()];
  }

  /** Every module below (and including) this one with its dotted path; also records the paths. */
  namedModules(prefix = ''): [string, Module][] {
    this.ownPath = prefix;
    const out: [string, Module][] = [[prefix, this]];
    for (const [name, child] of this.children) {
      out.push(...child.namedModules(prefix === '' ? name : `${prefix}.${name}`));
    }
    return out;
  }

  /** Every parameter below this module with its dotted path. */
  namedParameters(prefix = ''): [string, tf.Variable][] {
    const out: [string, tf.Variable][] = [];
    for (const [name, p] of this.params) out.push([prefix === '' ? name : `${prefix}.${name}`, p]);
    for (const [name, child] of this.children) {
      out.push(...child.namedParameters(prefix === '' ? name : `${prefix}.${name}`));
    }
    return out;
  }

  /** Parameters owned directly by this module. */
  ownParameters(): [string, tf.Variable][] {
    return [...this.params.entries()];
  }

  /** Number of scalar weights below this module. */
  parameterCount(): number {
    return this.namedParameters().reduce((n, [, p]) => n + p.size, 0);
  }

  /** Hook point names this module itself provides: '' (its output) and its taps. */
  ownHookPoints(): string[] {
    return ['', ...this.tapNames];
  }

  /** Attach a hook to this module's output (`point` '') or one of its taps. Used by `src/hooks`. */
  attachHook(point: string, kind: 'pre' | 'post', fn: HookFn): HookHandle {
    const entry: HookEntry = { kind, fn };
    const list = this.hooks.get(point) ?? [];
    list.push(entry);
    this.hooks.set(point, list);
    return {
      remove: () => {
        const current = this.hooks.get(point);
        if (current === undefined) return;
        const i = current.indexOf(entry);
        if (i >= 0) current.splice(i, 1);
        if (current.length === 0) this.hooks.delete(point);
      },
    };
  }

  /** Whether any hook is attached to this module (lets hot paths skip hook bookkeeping). */
  hasHooks(): boolean {
    return this.hooks.size > 0;
  }

  /**
   * Whether a hook observes one of this module's taps (not its output): a fused path that never
   * materialises the tapped values must not run then.
   */
  protected hasTapHooks(): boolean {
    return this.tapNames.some((name) => this.hooks.has(name));
  }

  /**
   * Whether a hook is attached to one of this module's taps or to any module below it. A fused
   * kernel computes those points inside itself, so it must not run while they have hooks.
   */
  hasInnerHooks(): boolean {
    for (const point of this.hooks.keys()) if (point !== '') return true;
    for (const child of this.children.values()) if (child.hasHooks() || child.hasInnerHooks()) return true;
    return false;
  }

  /** Remove every hook attached to this module and the modules below it. */
  clearHooks(): void {
    for (const [, m] of this.namedModules(this.ownPath)) m.hooks.clear();
  }

  /**
   * Run hooks of one kind for one point. A hook's replacement must keep the shape; the value
   * it returns flows on to the next hook and downstream.
   */
  protected runHooks(point: string, kind: 'pre' | 'post', value: tf.Tensor, ctx: ForwardContext): tf.Tensor {
    const list = this.hooks.get(point);
    if (list === undefined) return value;
    const name = point === '' ? this.ownPath : this.ownPath === '' ? point : `${this.ownPath}.${point}`;
    for (const entry of [...list]) {
      if (entry.kind !== kind) continue;
      const replaced = entry.fn(value, { name, forward: ctx });
      if (replaced === undefined) continue;
      if (!(replaced instanceof tf.Tensor)) {
        throw new Error(`hook on '${name}' returned ${typeof replaced}; return a tf.Tensor or nothing`);
      }
      if (replaced.isDisposed) throw new Error(`hook on '${name}' returned a disposed tensor`);
      if (!tf.util.arraysEqual(replaced.shape, value.shape)) {
        throw new Error(
          `hook on '${name}' returned shape [${replaced.shape}], expected [${value.shape}] (a replacement must keep the shape)`,
        );
      }
      if (replaced.dtype !== value.dtype) {
        throw new Error(`hook on '${name}' returned dtype ${replaced.dtype}, expected ${value.dtype}`);
      }
      // A clone (no data copy) in the current scope: the forward owns what flows on, so a tensor the
      // hook's author still holds (e.g. one constant returned on every call) never ends up inside
      // an output that gets disposed, and disposing theirs never breaks ours.
      value = replaced === value ? value : tf.clone(replaced);
    }
    return value;
  }

  /**
   * Expose an intermediate value as the hook point `<path>.<name>` (declared with {@link declareTaps}).
   * Without hooks it returns `value` untouched at no cost.
   */
  protected tap<T extends tf.Tensor>(name: string, value: T, ctx: ForwardContext): T {
    if (this.hooks.size === 0) return value;
    return this.runHooks(name, 'post', value, ctx) as T;
  }

  /** Free every parameter below this module (and what the ops keep derived from them). */
  dispose(): void {
    for (const [, p] of this.namedParameters()) disposeWeight(p);
  }
}

/**
 * A module with the one forward signature every block shares: a tensor in, a tensor out, with
 * the per-call state (masks, positions, caches) in `ctx`. Call it through {@link Layer.call} so
 * that hooks see it.
 */
export abstract class Layer extends Module {
  /** The computation; subclasses implement this, callers use {@link call}. */
  protected abstract forward(x: tf.Tensor, ctx: ForwardContext): tf.Tensor;

  /** Run the layer with its pre-hooks (on the input) and hooks (on the output). */
  call(x: tf.Tensor, ctx: ForwardContext): tf.Tensor {
    if (!this.hasHooks()) return this.forward(x, ctx);
    const input = this.runHooks('', 'pre', x, ctx);
    return this.runHooks('', 'post', this.forward(input, ctx), ctx);
  }

  /**
   * `x + this(norm(x))`, the pre-norm residual block around this layer (called by `residual()`
   * in a tidy scope). A layer that can compute the whole block in one step overrides it (the
   * Mamba mixer, with its fused kernel), falling back to this.
   */
  preNormResidual(x: tf.Tensor, norm: Layer, ctx: ForwardContext): tf.Tensor {
    return x.add(this.call(norm.call(x, ctx), ctx));
  }
}

/** An ordered list of layers named `0`, `1`, ... (the `layers` of a model). */
export class ModuleList<M extends Module> extends Module {
  readonly items: M[];
  constructor(items: M[]) {
    super();
    this.items = items;
    items.forEach((m, i) => this.addModule(String(i), m));
  }
  get length(): number {
    return this.items.length;
  }
}
