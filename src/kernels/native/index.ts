/**
 * Tessera's optional native CPU backend: a Node addon (native/) over the system OpenBLAS,
 * registered as the tfjs backend 'native'. Build it with `npm run build:native`.
 */
import { loadAddon, type NativeInfo } from './addon.js';

export { ADDON_PATH, isNativeBuilt, type NativeInfo } from './addon.js';
export { NATIVE_BACKEND, registerNativeBackend } from './backend.js';
export { layerNorm, rmsNorm, selectiveScan, type SelectiveScanArrays } from './ops.js';

/** Threads for BLAS calls and the selective scan (default: `TESSERA_NUM_THREADS`, else every core). */
export function setNumThreads(threads: number): void {
  if (!Number.isInteger(threads) || threads < 1) {
    throw new Error(`setNumThreads: threads must be a positive integer, got ${threads}`);
  }
  loadAddon().setNumThreads(threads);
}

/** Threads OpenBLAS currently uses per call. */
export function getNumThreads(): number {
  return loadAddon().getNumThreads();
}

/** Which OpenBLAS kernel set and thread count the addon runs with. */
export function nativeInfo(): NativeInfo {
  return loadAddon().info();
}
