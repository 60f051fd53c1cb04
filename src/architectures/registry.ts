import 'reflect-metadata';
import { container, singleton } from 'tsyringe';
import type { Architecture } from './architecture.js';

/**
 * Architectures by name and HF `model_type`. Loaders consult it, so a new architecture (Tessera's
 * or a user's) plugs in by registering here, without touching loader code.
 */
@singleton()
export class ArchitectureRegistry {
  private readonly byName = new Map<string, Architecture<any>>();

  /** Add (or replace) an architecture. */
  register(architecture: Architecture<any>): void {
    this.byName.set(architecture.name, architecture);
  }

  /** Registered architecture names. */
  names(): string[] {
    return [...this.byName.keys()];
  }

  /** The architecture registered as `name`. */
  get(name: string): Architecture<any> {
    const found = this.byName.get(name);
    if (found === undefined) throw new Error(`unknown architecture '${name}'; registered: ${this.names().join(', ')}`);
    return found;
  }

  /** The architecture for an HF config: by `model_type`, else by an architecture's own detection. */
  forConfig(raw: Record<string, unknown>, source = 'config.json'): Architecture<any> {
    const modelType = raw.model_type;
    if (typeof modelType === 'string') {
      for (const a of this.byName.values()) if (a.modelTypes.includes(modelType)) return a;
      const known = [...this.byName.values()].flatMap((a) => a.modelTypes);
      throw new Error(`unknown model_type '${modelType}' in ${source}; supported: ${known.join(', ')} (register an Architecture to add one)`);
    }
    for (const a of this.byName.values()) if (a.detect?.(raw)) return a;
    throw new Error(`${source} has no 'model_type' and matches no registered architecture`);
  }
}

/** The process-wide registry (resolved from the tsyringe container). */
export function architectureRegistry(): ArchitectureRegistry {
  return container.resolve(ArchitectureRegistry);
}
