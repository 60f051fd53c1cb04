import type { NativeAddon } from './addon.js';

/** One 2 MiB page. */
export const HUGE_PAGE = 2 << 20;

/** Byte alignment of each array in a shared block: a cache line, as the kernels' rows expect. */
const ALIGN = 64;

/** An array to move, and where its copy goes. */
export interface Placement {
  values: Float32Array | Uint16Array | Int8Array;
  place(copy: Float32Array | Uint16Array | Int8Array): void;
}

/**
 * Move long-lived arrays (a model's weights) into memory on 2 MiB pages. Decode reads every weight
 * once per token, and on 4 KiB pages the prefetchers stop at each page and the TLB misses
 * (docs/performance.md). An array of at least one page gets its own copy; the smaller ones share
 * one block sized to hold them all, each a view of it, when together they fill a page: an int8
 * Llama-small's projections are 0.2-1.6 MB each. A block lives while any view of it does.
 * Returns the arrays left behind (the replaced ones and the block's zero-filled source), garbage
 * once the caller drops them.
 */
export function placeOnHugePages(addon: NativeAddon, placements: readonly Placement[]): ArrayBufferView[] {
  const replaced: ArrayBufferView[] = [];
  const small: Placement[] = [];
  let smallBytes = 0;
  for (const p of placements) {
    const bytes = p.values.byteLength;
    if (bytes === 0) continue;
    if (bytes < HUGE_PAGE) {
      small.push(p);
      smallBytes += roundUp(bytes);
      continue;
    }
    // The addon copies a Float32Array: other views go as one when their bytes allow it.
    if (bytes % 4 !== 0 || p.values.byteOffset % 4 !== 0) continue;
    const copy = addon.hugePageCopy(new Float32Array(p.values.buffer, p.values.byteOffset, bytes / 4));
    if (copy === null) continue;
    p.place(viewLike(p.values, copy.buffer, copy.byteOffset));
    replaced.push(p.values);
  }
  if (smallBytes < HUGE_PAGE) return replaced;
  const zeros = new Float32Array(smallBytes / 4);
  const block = addon.hugePageCopy(zeros);
  replaced.push(zeros);
  if (block === null) return replaced;
  const bytes = new Uint8Array(block.buffer, block.byteOffset, smallBytes);
  let offset = 0;
  for (const p of small) {
    const { values } = p;
    bytes.set(new Uint8Array(values.buffer, values.byteOffset, values.byteLength), offset);
    p.place(viewLike(values, block.buffer, block.byteOffset + offset));
    replaced.push(values);
    offset += roundUp(values.byteLength);
  }
  return replaced;
}

function roundUp(bytes: number): number {
  return Math.ceil(bytes / ALIGN) * ALIGN;
}

/** A view of the same type and length as `like` over `buffer` from `byteOffset`. */
function viewLike<T extends Float32Array | Uint16Array | Int8Array>(like: T, buffer: ArrayBufferLike, byteOffset: number): T {
  const View = like.constructor as new (buffer: ArrayBufferLike, byteOffset: number, length: number) => T;
  return new View(buffer, byteOffset, like.length);
}
