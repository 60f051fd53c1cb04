/**
 * Tessera's optional native CPU backend: a Node addon (native/) over the system OpenBLAS,
 * registered as the tfjs backend 'native'. Build it with `npm run build:native`.
 */
import * as tf from '@tensorflow/tfjs-core';

import { loadAddon, type NativeInfo } from './addon.js';
import { NATIVE_BACKEND } from './backend.js';

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

/** Precisions {@link setMatmulPrecision} takes. */
export type MatmulPrecision = 'float32' | 'bfloat16';

/**
 * Opt in to bfloat16 compute for large matrix products on the native backend, or back to the
 * default 'float32'. With 'bfloat16', both operands of float32 BatchMatMul/_FusedMatMul calls
 * above a size threshold (prefill, encoders, training) and the activations of packed-weight
 * (bf16/f16/int8) prefill are rounded to bfloat16 and their products summed in float32: on AMX
 * tiles where the CPU has AMX-BF16 (then prefill attention too), else with AVX-512 BF16 dot
 * products. Faster, with about 3 significant digits per input (errors measured in
 * docs/precision.md, "bfloat16 compute"). Decode (one row) is unchanged. Process-wide.
 *
 * @throws Error when 'bfloat16' is asked for while the active tfjs backend is not 'native' (it
 *   would change nothing), or naming the missing CPU feature (e.g. `avx512_bf16`) where the CPU
 *   or OS cannot run it; the precision then stays as it was.
 */
export function setMatmulPrecision(precision: MatmulPrecision): void {
  if (precision !== 'float32' && precision !== 'bfloat16') {
    throw new Error(`setMatmulPrecision: precision must be 'float32' or 'bfloat16', got ${String(precision)}`);
  }
  // The engine's field, not tf.getBackend(), which would start a backend as a side effect.
  const active = (tf.engine() as unknown as { backendName: string | null }).backendName;
  if (precision === 'bfloat16' && active !== NATIVE_BACKEND) {
    throw new Error(
      `setMatmulPrecision('bfloat16') applies to the '${NATIVE_BACKEND}' backend only; the active backend is ` +
        `${active === null ? 'none yet (start it first: initBackend({ backend: \'native\' }))' : `'${active}'`}`,
    );
  }
  loadAddon().setMatmulPrecision(precision);
}

/** The matmul precision in force ({@link setMatmulPrecision}); 'float32' unless opted in. */
export function getMatmulPrecision(): MatmulPrecision {
  return loadAddon().getMatmulPrecision();
}

/** Which OpenBLAS kernel set and thread count the addon runs with. */
export function nativeInfo(): NativeInfo {
  return loadAddon().info();
}
