import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '../tf-chained.js';
import { checkKeys, type KeyList } from '../util/options.js';

/** Backends Tessera knows how to start, fastest first. */
export type BackendName = 'tensorflow-gpu' | 'tensorflow' | 'native' | 'wasm' | 'cpu';

/** The order tried when no backend is named. */
export const BACKEND_PREFERENCE: readonly BackendName[] = [
  'tensorflow-gpu',
  'tensorflow',
  'native',
  'wasm',
  'cpu',
];

export interface BackendOptions {
  /** Force one backend; otherwise `TESSERA_BACKEND`, otherwise the first of BACKEND_PREFERENCE that starts. */
  backend?: BackendName;
  /** Print which backends were tried and why they were skipped. */
  verbose?: boolean;
}

const BACKEND_OPTION_KEYS = { backend: true, verbose: true } satisfies KeyList<BackendOptions>;

/**
 * A loader per backend: it imports the package (which registers the backend with tfjs) and
 * returns the tfjs backend name to activate. It throws when the package is missing or broken.
 * Extra backends (the native addon) add themselves here with {@link registerBackendLoader}.
 */
const loaders = new Map<BackendName, () => Promise<string>>([
  [
    'tensorflow-gpu',
    async () => {
      // tfjs-node(-gpu) are optional dependencies: absent or without their native binary on
      // machines that cannot download libtensorflow.
      await import('@tensorflow/tfjs-node-gpu' as string);
      return 'tensorflow';
    },
  ],
  [
    'tensorflow',
    async () => {
      await import('@tensorflow/tfjs-node' as string);
      return 'tensorflow';
    },
  ],
  [
    'wasm',
    async () => {
      await import('@tensorflow/tfjs-backend-wasm');
      // Mamba's scan as one JS pass over the wasm heap instead of a few thousand tfjs ops.
      const { registerWasmScanKernel } = await import('./wasm/scan-kernel.js');
      registerWasmScanKernel();
      return 'wasm';
    },
  ],
  [
    'native',
    async () => {
      // Optional: fails with a build hint when native/ was not compiled (no OpenBLAS).
      const { registerNativeBackend } = await import('./native/backend.js');
      return registerNativeBackend();
    },
  ],
  ['cpu', async () => 'cpu'],
]);

/** Make another backend selectable by name (used by the optional native addon). */
export function registerBackendLoader(name: BackendName, load: () => Promise<string>): void {
  loaders.set(name, load);
}

let active: BackendName | undefined;

/**
 * Start the fastest available tfjs backend: tfjs-node-gpu, tfjs-node, the native addon, wasm,
 * then the pure-JS cpu backend. `options.backend` or the `TESSERA_BACKEND` environment variable
 * names one instead; naming one that cannot start is an error rather than a silent fallback.
 */
export async function initBackend(options: BackendOptions = {}): Promise<BackendName> {
  checkKeys(options, BACKEND_OPTION_KEYS, 'initBackend options');
  const requested = options.backend ?? (process.env.TESSERA_BACKEND as BackendName | undefined);
  if (requested !== undefined && requested.length > 0) {
    if (!BACKEND_PREFERENCE.includes(requested)) {
      throw new Error(
        `unknown backend '${requested}' (TESSERA_BACKEND or options.backend); choose one of ${BACKEND_PREFERENCE.join(', ')}`,
      );
    }
    await activate(requested);
    return requested;
  }
  const reasons: string[] = [];
  for (const name of BACKEND_PREFERENCE) {
    try {
      await activate(name);
      if (options.verbose) console.error(`tessera: backend ${name} (skipped: ${reasons.join('; ') || 'none'})`);
      return name;
    } catch (err) {
      reasons.push(`${name}: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  throw new Error(`no tfjs backend could start:\n  ${reasons.join('\n  ')}`);
}

async function activate(name: BackendName): Promise<void> {
  const load = loaders.get(name);
  if (load === undefined) throw new Error(`backend '${name}' is not available in this installation`);
  const tfName = await load();
  if (!(await tf.setBackend(tfName))) throw new Error(`tfjs could not initialise backend '${tfName}'`);
  await tf.ready();
  active = name;
}

/** The backend Tessera started, or undefined before {@link initBackend}. */
export function activeBackend(): BackendName | undefined {
  return active;
}

// Here for the Node entry's importers; it lives apart so browser code reaches it without this file's Node backends.
export { settleWeights } from './weights.js';
