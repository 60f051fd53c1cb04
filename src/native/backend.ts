import * as tf from '@tensorflow/tfjs-core';
import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';

import { loadAddon, type NativeAddon } from './addon.js';
import { attentionKernels } from './attention.js';
import { elementwiseKernels } from './elementwise.js';
import { sliceKernels } from './slice.js';
import { gatherKernels } from './gather.js';
import { nativeKernels } from './kernels.js';
import { mambaKernels } from './mamba-mixer.js';
import { ffnKernels } from './ffn-kernels.js';

/** The tfjs backend name of the native addon. */
export const NATIVE_BACKEND = 'native';

/**
 * The cpu backend's storage and kernels, with BLAS-backed ones swapped in. Subclassing (rather
 * than a new KernelBackend) means every kernel we do not override keeps working unchanged.
 */
class NativeBackend extends MathBackendCPU {
  constructor(private readonly addon: NativeAddon) {
    super();
    // The cpu backend advises installing tfjs-node on its first write; that advice is not for us.
    (this as unknown as { firstUse: boolean }).firstUse = false;
  }

  /**
   * Move long-lived float32 data (a model's weights) of at least one 2 MiB page into memory on
   * 2 MiB pages. Decode reads every weight once per token; on 4 KiB pages the prefetchers stop
   * at each page and the TLB misses, which costs ~25% of the memory bandwidth (docs/performance.md).
   */
  placeWeights(dataIds: readonly object[]): void {
    for (const dataId of dataIds) {
      const entry = this.data.get(dataId);
      const values = entry?.values;
      if (!(values instanceof Float32Array) || values.byteLength < HUGE_PAGE) continue;
      const copy = this.addon.hugePageCopy(values);
      if (copy !== null) entry!.values = copy;
    }
  }
}

const HUGE_PAGE = 2 << 20;

let registered = false;

/**
 * Load the addon and register the 'native' tfjs backend: every cpu kernel copied under the new
 * name, then matmuls, softmax, transpose, gather, common elementwise ops and Tessera's fused
 * kernels replaced by native ones.
 * Idempotent; returns the backend name for `tf.setBackend`. Throws a clear error when the addon
 * was not built (see {@link loadAddon}).
 */
export function registerNativeBackend(): string {
  if (registered) return NATIVE_BACKEND;
  const addon = loadAddon();
  tf.registerBackend(NATIVE_BACKEND, () => new NativeBackend(addon));
  const own = [
    ...nativeKernels(addon, NATIVE_BACKEND),
    ...attentionKernels(addon, NATIVE_BACKEND),
    ...mambaKernels(addon, NATIVE_BACKEND),
    ...elementwiseKernels(addon, NATIVE_BACKEND),
    ...gatherKernels(NATIVE_BACKEND),
    ...sliceKernels(NATIVE_BACKEND),
    ...ffnKernels(addon, NATIVE_BACKEND),
  ];
  const overridden = new Set(own.map((k) => k.kernelName));
  for (const config of tf.getKernelsForBackend('cpu')) {
    if (!overridden.has(config.kernelName)) tf.registerKernel({ ...config, backendName: NATIVE_BACKEND });
  }
  for (const config of own) tf.registerKernel(config);
  registered = true;
  return NATIVE_BACKEND;
}
