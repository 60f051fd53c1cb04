/**
 * Conversions between float32 and the half-precision formats checkpoints use. tfjs computes in
 * float32, so halves are widened on load and narrowed (round to nearest, ties to even) on save.
 */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** bfloat16 bits -> float32: bf16 is the top half of a float32. */
export function bf16ToF32(bits: number): number {
  u32[0] = bits << 16;
  return f32[0]!;
}

/** float32 -> bfloat16 bits, round to nearest even (NaN stays NaN). */
export function f32ToBf16(value: number): number {
  f32[0] = value;
  const x = u32[0]!;
  if ((x & 0x7f800000) === 0x7f800000 && (x & 0x7fffff) !== 0) return (x >>> 16) | 0x40; // quiet NaN
  const roundingBias = 0x7fff + ((x >>> 16) & 1);
  return ((x + roundingBias) >>> 16) & 0xffff;
}

/** IEEE half bits -> float32. */
export function f16ToF32(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >>> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24; // subnormal
  if (exponent === 0x1f) return fraction === 0 ? sign * Infinity : NaN;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

/** float32 -> IEEE half bits, round to nearest even, overflow to infinity. */
export function f32ToF16(value: number): number {
  f32[0] = value;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exponent = (x >>> 23) & 0xff;
  let mantissa = x & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa !== 0 ? 0x200 : 0);
  let e = exponent - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal half (or zero): shift the implicit-1 mantissa right, rounding to nearest even.
    if (e < -10) return sign;
    mantissa |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = mantissa & ((1 << shift) - 1);
    let m = mantissa >>> shift;
    if (rest > half || (rest === half && (m & 1) === 1)) m += 1;
    return sign | m;
  }
  const rest = mantissa & 0x1fff;
  let m = mantissa >>> 13;
  if (rest > 0x1000 || (rest === 0x1000 && (m & 1) === 1)) {
    m += 1;
    if (m === 0x400) {
      m = 0;
      e += 1;
      if (e >= 0x1f) return sign | 0x7c00;
    }
  }
  return sign | (e << 10) | m;
}

/** Bytes per element of the checkpoint dtypes Tessera reads (safetensors names; .bin maps to them). */
export const ELEMENT_BYTES: Readonly<Record<string, number>> = { F32: 4, F16: 2, BF16: 2, F64: 8, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };



/**
 * The element count of `shape`, or undefined when a dimension is not a non-negative safe integer
 * or a partial product leaves the safe-integer range (as the reference safetensors crate's
 * checked multiplication does, so `[2^40, 2^40, 0]` is refused rather than counted as 0).
 */
export function elementCount(shape: readonly unknown[]): number | undefined {
  let count = 1;
  for (const d of shape) {
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) return undefined;
    count *= d;
    if (!Number.isSafeInteger(count)) return undefined;
  }
  return count;
}

/** Whether a checkpoint dtype widens to float32 (else to int32). */
export function isFloatDtype(code: string): boolean {
  return code === 'F32' || code === 'F16' || code === 'BF16' || code === 'F64';
}

/**
 * A reader of element `i` of little-endian data in the checkpoint dtype `code`, as a JS number.
 * int64 values outside int32 (tfjs has no int64) are an error that starts with `where` (the file
 * and tensor, e.g. `model.bin: tensor 'w'`).
 */
export function elementReader(code: string, view: DataView, where: string): (i: number) => number {
  switch (code) {
    case 'F32':
      return (i) => view.getFloat32(i * 4, true);
    case 'F16':
      return (i) => f16ToF32(view.getUint16(i * 2, true));
    case 'BF16':
      return (i) => bf16ToF32(view.getUint16(i * 2, true));
    case 'F64':
      return (i) => view.getFloat64(i * 8, true);
    case 'I64':
      return (i) => {
        const v = view.getBigInt64(i * 8, true);
        if (v > 2147483647n || v < -2147483648n) {
          throw new Error(`${where}: int64 value ${v} at element ${i} does not fit in int32 (tfjs has no int64)`);
        }
        return Number(v);
      };
    case 'I32':
      return (i) => view.getInt32(i * 4, true);
    case 'I16':
      return (i) => view.getInt16(i * 2, true);
    case 'I8':
      return (i) => view.getInt8(i);
    case 'U8':
    case 'BOOL':
      return (i) => view.getUint8(i);
    default:
      throw new Error(`${where}: unsupported element type ${code}`);
  }
}
