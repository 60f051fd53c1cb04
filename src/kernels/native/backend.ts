import * as tf from '@tensorflow/tfjs-core';
import type { BackendValues, DataType } from '@tensorflow/tfjs-core';
import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';

import { loadAddon, type NativeAddon } from './addon.js';
import { attentionKernels } from './attention.js';
import { elementwiseKernels } from './elementwise.js';
import { sliceKernels } from './slice.js';
import { gatherKernels } from './gather.js';
import { NATIVE_MAX_STATE_SIZE, nativeKernels } from './kernels.js';
import { declareMaxStateSize, FUSED } from '../contract.js';
import { mambaKernels } from './mamba-mixer.js';
import { ffnKernels } from './ffn-kernels.js';
import { backwardKernels } from './scan-backward.js';
import { layerBackwardKernels } from './layer-backward.js';
import { adamKernels } from './adam.js';
import { lossKernels } from './loss-kernels.js';
import { packedPlacements, unpackedValues, withPackedWeights } from './quant.js';
import { HUGE_PAGE, placeOnHugePages, type Placement } from './huge-pages.js';

/** The tfjs backend name of the native addon. */
export const NATIVE_BACKEND = 'native';

/**
 * The cpu backend's storage and kernels, with BLAS-backed ones swapped in. Subclassing (rather
 * than a new KernelBackend) means every kernel we do not override keeps working unchanged.
 */
export class NativeBackend extends MathBackendCPU {
  /** Buffers of disposed kernel outputs, by capacity in floats, for {@link allocate} to reuse. */
  private readonly spare = new Map<number, ArrayBuffer[]>();
  private spareBytes = 0;
  /** The view {@link allocate} handed out over each of its buffers, and the dataId holding it now. */
  private readonly handedOut = new WeakMap<ArrayBufferLike, Float32Array>();
  private readonly owner = new WeakMap<ArrayBufferLike, object>();
  /** Pooled buffers that left the backend's hands (read out, or viewed by another tensor). */
  private readonly shared = new WeakSet<ArrayBufferLike>();
  /** Buffers appended into in place ({@link appendInPlace}): earlier tensors may still view them. */
  private readonly appended = new WeakSet<ArrayBufferLike>();

  /** Arrays about to become garbage after a load; once one is collected, freed memory goes back. */
  private readonly trimAfterCollection = new FinalizationRegistry<undefined>(() => this.scheduleTrim());
  private trimScheduled = false;

  constructor(private readonly addon: NativeAddon) {
    super();
    // The cpu backend advises installing tfjs-node on its first write; that advice is not for us.
    (this as unknown as { firstUse: boolean }).firstUse = false;
  }

  /**
   * Move long-lived data (a model's weights, float32 or packed) onto 2 MiB pages
   * ({@link placeOnHugePages}): large arrays one by one, the small ones of these tensors together.
   */
  placeWeights(dataIds: readonly object[]): void {
    const placements: Placement[] = [];
    for (const dataId of dataIds) {
      const entry = this.data.get(dataId);
      const values = entry?.values;
      if (values instanceof Float32Array) placements.push({ values, place: (copy) => (entry!.values = copy as Float32Array) });
      else placements.push(...packedPlacements(this, dataId));
    }
    for (const old of placeOnHugePages(this.addon, placements)) this.releaseWhenCollected(old);
    // Loading leaves the float32 values a model was built, read or packed from freed but resident
    // (glibc keeps freed blocks below its mmap threshold): give them back once the weights are settled.
    this.addon.releaseFreeMemory();
  }

  /**
   * For a large array a load is about to drop (a weight's float32 values once packed or moved):
   * when the garbage collector frees it, hand the allocator's free memory back to the system.
   * Without this, a model loaded as bfloat16 keeps its float32 originals' pages resident.
   */
  releaseWhenCollected(values: ArrayBufferView): void {
    if (values.byteLength >= HUGE_PAGE) this.trimAfterCollection.register(values.buffer, undefined);
  }

  /**
   * One trim for however many arrays one collection freed, a little later: V8 frees the arrays'
   * memory on a background thread after the finalizers run, and a busy machine delays it.
   */
  private scheduleTrim(): void {
    if (this.trimScheduled) return;
    this.trimScheduled = true;
    setTimeout(() => {
      this.trimScheduled = false;
      this.addon.releaseFreeMemory();
    }, TRIM_DELAY_MS).unref();
  }

  /**
   * A float32 output buffer for a kernel that writes every element of it: the buffer of an
   * earlier output that has been disposed, else a new one. A decode step makes the same outputs
   * every token (Mamba's conv and SSM states are 3 MB per token for Mamba-130m); fresh ones are V8
   * external memory, whose growth sets off a full GC every ~10 tokens, and arrive cold. A buffer
   * is only reused while no one else can see it: not once it was read out (`dataSync`, `data`,
   * `buffer`) or another tensor was made over it (the cpu kernels' contiguous slices are views);
   * such buffers are left to the garbage collector.
   *
   * With `growing`, for an output that grows step by step (a KV cache, one position per token),
   * the buffer has ~9% headroom and the returned array is a view of its first `length` floats, so
   * the buffer of the step before last fits again.
   */
  allocate(length: number, growing = false): Float32Array {
    const capacity = growing ? grownCapacity(length) : length;
    const buffer = this.spare.get(capacity)?.pop();
    if (buffer !== undefined) this.spareBytes -= buffer.byteLength;
    const view = new Float32Array(buffer ?? new ArrayBuffer(capacity * 4), 0, length);
    this.handedOut.set(view.buffer, view);
    return view;
  }

  override write(values: BackendValues, shape: number[], dtype: DataType): object {
    const dataId = super.write(values, shape, dtype);
    this.claim(values, dataId);
    return dataId;
  }

  override move(dataId: object, values: BackendValues, shape: number[], dtype: DataType, refCount: number): void {
    super.move(dataId, values, shape, dtype, refCount);
    this.claim(values, dataId);
  }

  override readSync(dataId: object): BackendValues {
    // A packed weight (quant.ts) reads out widened to float32.
    const unpacked = unpackedValues(this.addon, this, dataId);
    if (unpacked !== undefined) return unpacked;
    this.markShared(this.data.get(dataId)?.values);
    return super.readSync(dataId);
  }

  override disposeData(dataId: object, force = false): boolean {
    const values = this.data.get(dataId)?.values;
    const released = super.disposeData(dataId, force);
    if (released && values instanceof Float32Array && this.owner.get(values.buffer) === dataId) {
      const buffer = values.buffer as ArrayBuffer;
      this.owner.delete(buffer);
      this.handedOut.delete(buffer);
      if (!this.shared.has(buffer) && !this.appended.has(buffer) && this.spareBytes + buffer.byteLength <= MAX_SPARE_BYTES) {
        const capacity = buffer.byteLength / 4;
        const list = this.spare.get(capacity) ?? [];
        list.push(buffer);
        this.spare.set(capacity, list);
        this.spareBytes += buffer.byteLength;
      }
    }
    return released;
  }

  /**
   * For a kernel that updates a tensor in place (Adam's optimizer step): the float32 buffer of
   * `dataId` when nothing but that one tensor can see it (one reference; a buffer {@link allocate}
   * handed out, owned by this dataId, never read out or viewed by another tensor), else undefined.
   * The kernel overwrites it and returns it as a new output (`makeTensorInfo`), which becomes its
   * owner; the old dataId, once disposed, leaves the buffer alone. A new dataId, not the old one
   * kept, because tfjs and Tessera read a changed dataId as "the values changed" (derived-weights).
   */
  takeOver(dataId: object): Float32Array | undefined {
    const entry = this.data.get(dataId);
    const values = entry?.values;
    if (!(values instanceof Float32Array) || entry!.refCount !== 1) return undefined;
    const buffer = values.buffer;
    if (this.owner.get(buffer) !== dataId || this.shared.has(buffer) || this.handedOut.get(buffer) !== values) return undefined;
    this.owner.delete(buffer);
    return values;
  }

  /**
   * {@link takeOver} for a kernel that writes past the end of what the tensor holds (a KV cache's
   * spare room) and leaves what it holds untouched: the tensor may live on (a caller's own state
   * store keeping an earlier step), so the buffer never returns to the pool, where another output
   * would overwrite what that tensor holds; the garbage collector frees it once no tensor views it.
   */
  appendInPlace(dataId: object): Float32Array | undefined {
    const values = this.takeOver(dataId);
    if (values !== undefined) this.appended.add(values.buffer);
    return values;
  }

  /** Bytes held for reuse by {@link allocate} (at most 768 MiB). */
  get spareBufferBytes(): number {
    return this.spareBytes;
  }

  /** Let go of the buffers held for reuse (e.g. after a long generation), for the GC to free. */
  releaseSpareBuffers(): void {
    this.spare.clear();
    this.spareBytes = 0;
  }

  override dispose(): void {
    this.releaseSpareBuffers();
    super.dispose();
  }

  /** Record which dataId holds a pooled buffer; a second holder, or another view of it, makes it shared. */
  private claim(values: BackendValues | undefined, dataId: object): void {
    if (!ArrayBuffer.isView(values)) return;
    const view = this.handedOut.get(values.buffer);
    if (view === undefined) return;
    if (this.owner.has(values.buffer) || values !== view) {
      this.shared.add(values.buffer);
    } else {
      this.owner.set(values.buffer, dataId);
    }
  }

  private markShared(values: BackendValues | undefined): void {
    if (ArrayBuffer.isView(values) && this.handedOut.has(values.buffer)) this.shared.add(values.buffer);
  }
}

/** `length` rounded up to the next step of a 2^(1/8) (~9%) series: the capacity of a growing output. */
function grownCapacity(length: number): number {
  if (length <= 1024) return length;
  return Math.max(length, Math.ceil(2 ** (Math.ceil(Math.log2(length) * 8) / 8)));
}

/**
 * At most this much disposed output is held for reuse: enough for the four vocabulary-sized
 * buffers of a training step (docs/native-backend.md, Reused output buffers).
 */
const MAX_SPARE_BYTES = 768 << 20;

/** How long after a collection the freed memory is handed back (see scheduleTrim). */
const TRIM_DELAY_MS = 100;

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
    ...elementwiseKernels(addon, NATIVE_BACKEND),
    ...sliceKernels(NATIVE_BACKEND),
    ...withPackedWeights(addon, NATIVE_BACKEND, [...ffnKernels(addon, NATIVE_BACKEND), ...mambaKernels(addon, NATIVE_BACKEND), ...gatherKernels(addon, NATIVE_BACKEND)]),
    ...backwardKernels(addon, NATIVE_BACKEND),
    ...layerBackwardKernels(addon, NATIVE_BACKEND),
    ...adamKernels(addon, NATIVE_BACKEND),
    ...lossKernels(addon, NATIVE_BACKEND),
  ];
  const overridden = new Set(own.map((k) => k.kernelName));
  for (const config of tf.getKernelsForBackend('cpu')) {
    if (!overridden.has(config.kernelName)) tf.registerKernel({ ...config, backendName: NATIVE_BACKEND });
  }
  for (const config of own) tf.registerKernel(config);
  for (const kernel of [FUSED.selectiveScan, FUSED.mambaMixer]) declareMaxStateSize(kernel, NATIVE_BACKEND, NATIVE_MAX_STATE_SIZE);
  registered = true;
  return NATIVE_BACKEND;
}
