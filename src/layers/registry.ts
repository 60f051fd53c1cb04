import 'reflect-metadata';
import { container, singleton } from 'tsyringe';
import type { Layer } from './module.js';

/** The slots of a block a registered part can fill. */
export type PartKind = 'mixer' | 'ffn' | 'norm';

/**
 * A serialisable description of one part: the registered `type` name plus its options, e.g.
 * `{ type: 'mamba', stateSize: 16 }`. Everything in it must survive `JSON.stringify`.
 */
export interface PartSpec {
  type: string;
  [option: string]: unknown;
}

/** Build a part from its options (the spec without `type`) for a model of width `hiddenSize`. */
export type PartFactory = (options: Record<string, unknown>, hiddenSize: number) => Layer;

/**
 * The inverse of a factory for layers built without the registry (e.g. by an HF architecture):
 * the options that would rebuild `layer`, or undefined when `layer` is not this part.
 */
export type PartDescriber = (layer: Layer) => Record<string, unknown> | undefined;

interface Entry {
  create: PartFactory;
  describe?: PartDescriber;
}

const KIND_LABEL: Record<PartKind, string> = { mixer: 'mixer', ffn: 'feed-forward', norm: 'norm' };

/**
 * Mixers, feed-forwards and norms by name. Hybrid configs name their parts here, so a user's
 * own mixer plugs into any model by registering a factory, without touching Tessera's source.
 */
@singleton()
export class LayerRegistry {
  private readonly entries: Record<PartKind, Map<string, Entry>> = { mixer: new Map(), ffn: new Map(), norm: new Map() };
  /** The spec each registry-built layer came from, so saving can write it back. */
  private readonly specs = new WeakMap<Layer, PartSpec>();

  /** Add (or replace) the part `name` of `kind`. */
  register(kind: PartKind, name: string, create: PartFactory, describe?: PartDescriber): void {
    this.entries[kind].set(name, { create, describe });
  }

  /** Registered names of one kind. */
  names(kind: PartKind): string[] {
    return [...this.entries[kind].keys()];
  }

  /** Build the part a spec names; `where` locates the spec in error messages (`layers[2].mixer`). */
  create(kind: PartKind, spec: PartSpec, hiddenSize: number, where = KIND_LABEL[kind]): Layer {
    if (spec === null || typeof spec !== 'object' || typeof spec.type !== 'string') {
      throw new Error(`${where}: expected an object with a 'type' naming a ${KIND_LABEL[kind]}, got ${JSON.stringify(spec)}`);
    }
    const entry = this.entries[kind].get(spec.type);
    if (entry === undefined) {
      throw new Error(`${where}: unknown ${KIND_LABEL[kind]} '${spec.type}'; registered: ${this.names(kind).join(', ')} (register one with layerRegistry().register('${kind}', name, factory))`);
    }
    const { type: _type, ...options } = spec;
    let layer: Layer;
    try {
      layer = entry.create(options, hiddenSize);
    } catch (err) {
      throw new Error(`${where} (${spec.type}): ${(err as Error).message}`);
    }
    try {
      this.specs.set(layer, JSON.parse(JSON.stringify(spec)) as PartSpec);
    } catch (err) {
      throw new Error(`${where}: a part spec must be plain JSON data (${(err as Error).message})`);
    }
    return layer;
  }

  /** The spec that rebuilds `layer`, or undefined when no registered part recognises it. */
  describe(kind: PartKind, layer: Layer): PartSpec | undefined {
    const known = this.specs.get(layer);
    if (known !== undefined) return structuredClone(known);
    for (const [type, entry] of this.entries[kind]) {
      const options = entry.describe?.(layer);
      if (options !== undefined) return { type, ...options };
    }
    return undefined;
  }
}

/** The process-wide registry (resolved from the tsyringe container). */
export function layerRegistry(): LayerRegistry {
  return container.resolve(LayerRegistry);
}

/** Register a token mixer (a Layer [B, L, H] -> [B, L, H]) under `name`. */
export function registerMixer(name: string, create: PartFactory, describe?: PartDescriber): void {
  layerRegistry().register('mixer', name, create, describe);
}

/** Register a feed-forward under `name`. */
export function registerFeedForward(name: string, create: PartFactory, describe?: PartDescriber): void {
  layerRegistry().register('ffn', name, create, describe);
}

/** Register a norm under `name`. */
export function registerNorm(name: string, create: PartFactory, describe?: PartDescriber): void {
  layerRegistry().register('norm', name, create, describe);
}
