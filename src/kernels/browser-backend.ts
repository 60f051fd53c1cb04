/**
 * Backend selection in a browser: webgpu, webgl, wasm, then cpu, as Node's `initBackend` tries its
 * backends fastest first. Browser-safe: no Node backend or addon is imported here.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '../tf-chained.js';
import { checkKeys, type KeyList } from '../util/options.js';

/** Backends Tessera starts in a browser, fastest first. */
export type BrowserBackendName = 'webgpu' | 'webgl' | 'wasm' | 'cpu';

/** The order tried when no backend is named. */
export const BROWSER_BACKEND_PREFERENCE: readonly BrowserBackendName[] = ['webgpu', 'webgl', 'wasm', 'cpu'];

export interface BrowserBackendOptions {
  /** Start this backend or fail; otherwise the first of {@link BROWSER_BACKEND_PREFERENCE} that starts. */
  backend?: BrowserBackendName;
  /**
   * Where tfjs-backend-wasm's `.wasm` files are served (a URL prefix ending in `/`); default: beside
   * the bundle, as tfjs looks for them.
   */
  wasmPaths?: string;
  /** Log which backends were tried and why they were skipped. */
  verbose?: boolean;
}

const OPTION_KEYS = { backend: true, wasmPaths: true, verbose: true } satisfies KeyList<BrowserBackendOptions>;

const loaders: Record<BrowserBackendName, (options: BrowserBackendOptions) => Promise<void>> = {
  async webgpu() {
    if ((globalThis.navigator as { gpu?: unknown } | undefined)?.gpu === undefined) throw new Error('this browser has no WebGPU (navigator.gpu)');
    await import('@tensorflow/tfjs-backend-webgpu');
  },
  async webgl() {
    await import('@tensorflow/tfjs-backend-webgl');
  },
  async wasm(options) {
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    if (options.wasmPaths !== undefined) wasm.setWasmPaths(options.wasmPaths);
    // Mamba's scan as one JS pass over the wasm heap instead of a few thousand tfjs ops.
    const { registerWasmScanKernel } = await import('./wasm/scan-kernel.js');
    registerWasmScanKernel();
  },
  async cpu() {},
};

let active: BrowserBackendName | undefined;

/**
 * Start the fastest tfjs backend this browser has: webgpu, webgl, wasm, then cpu.
 * `options.backend` names one instead; naming one that cannot start is an error, not a fallback.
 */
export async function initBrowserBackend(options: BrowserBackendOptions = {}): Promise<BrowserBackendName> {
  checkKeys(options, OPTION_KEYS, 'initBackend options');
  const requested = options.backend;
  if (requested !== undefined) {
    if (!BROWSER_BACKEND_PREFERENCE.includes(requested)) {
      throw new Error(`unknown backend '${requested}' (options.backend); in a browser choose one of ${BROWSER_BACKEND_PREFERENCE.join(', ')}`);
    }
    await activate(requested, options);
    return requested;
  }
  const reasons: string[] = [];
  for (const name of BROWSER_BACKEND_PREFERENCE) {
    try {
      await activate(name, options);
      if (options.verbose) console.info(`tessera: backend ${name} (skipped: ${reasons.join('; ') || 'none'})`);
      return name;
    } catch (err) {
      reasons.push(`${name}: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  throw new Error(`no tfjs backend could start:\n  ${reasons.join('\n  ')}`);
}

async function activate(name: BrowserBackendName, options: BrowserBackendOptions): Promise<void> {
  await loaders[name](options);
  if (!(await tf.setBackend(name))) throw new Error(`tfjs could not initialise backend '${name}'`);
  await tf.ready();
  active = name;
}

/** The backend {@link initBrowserBackend} started, or undefined before it. */
export function activeBrowserBackend(): BrowserBackendName | undefined {
  return active;
}
