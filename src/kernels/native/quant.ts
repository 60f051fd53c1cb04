import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';

import type { NativeAddon } from './addon.js';
import type { Placement } from './huge-pages.js';
import { activationCode, gatedLinearChecks, outFeatures, type GatedLinearInputs } from './ffn-kernels.js';
import { addResidual, allocate, projectedRows, scratch, values, type Backend, type KernelArgs } from './kernel-utils.js';
import { FUSED, markPacked, PACKED_DTYPES, requireFloat32, requireShape, type PackedDtype } from '../contract.js';

/**
 * Linear weights held as bfloat16, float16 or int8 on the native backend (native/src/quant.c).
 *
 * A packed weight stays a float32 tensor to tfjs and to the model (same shape, same parameter
 * path), but its storage is the narrow values: the linear kernels below read them directly, and
 * reading the tensor out (`dataSync`, saving) widens them to float32. Any other kernel that
 * reaches for the storage gets an error naming the format, never the raw bits read as floats.
 */
interface PackedWeight {
  /** quant.h's kind: the index in PACKED_DTYPES. */
  kind: number;
  dtype: PackedDtype;
  rows: number;
  cols: number;
  data: Uint16Array | Int8Array;
  /** int8's scale per output row, else null. */
  scales: Float32Array | null;
}

const packedWeights = new WeakMap<object, PackedWeight>();

/** The packed weight stored under `dataId`, if any. */
function packedAt(backend: Backend, dataId: object): PackedWeight | undefined {
  const stored = backend.data.get(dataId)?.values as unknown;
  return typeof stored === 'object' && stored !== null ? packedWeights.get(stored) : undefined;
}

/**
 * The arrays of the packed weight under `dataId` (none if it is not packed), each with a way to
 * replace it by an equal copy (NativeBackend.placeWeights moves them onto 2 MiB pages).
 */
export function packedPlacements(backend: Backend, dataId: object): Placement[] {
  const weight = packedAt(backend, dataId);
  if (weight === undefined) return [];
  const out: Placement[] = [{ values: weight.data, place: (copy) => (weight.data = copy as Uint16Array | Int8Array) }];
  const { scales } = weight;
  if (scales !== null) out.push({ values: scales, place: (copy) => (weight.scales = copy as Float32Array) });
  return out;
}

/** The packed weight behind `t`, if any. */
function packedOf(backend: Backend, t: TensorInfo): PackedWeight | undefined {
  return packedAt(backend, t.dataId);
}

/**
 * Stand-in for the values of a packed tensor in the backend's storage: every use of it as an
 * array throws, so a kernel without a packed path fails clearly instead of computing garbage.
 */
function packedValues(weight: PackedWeight): object {
  const fail = (): never => {
    throw new Error(
      `a [${weight.rows}, ${weight.cols}] weight is held as ${weight.dtype} (a model loaded with { dtype: '${weight.dtype}' }): ` +
        `only the linear kernels read it. Training, gradients and other ops on it need the model loaded with dtype 'float32'.`,
    );
  };
  const stand = new Proxy({}, { get: fail, set: fail, has: fail, ownKeys: fail, getOwnPropertyDescriptor: fail });
  packedWeights.set(stand, weight);
  return stand;
}

/** The float32 values of a packed tensor's storage (what `dataSync` returns), or undefined when it is not packed. */
export function unpackedValues(addon: NativeAddon, backend: Backend, dataId: object): Float32Array | undefined {
  const weight = packedAt(backend, dataId);
  if (weight === undefined) return undefined;
  const out = new Float32Array(weight.rows * weight.cols);
  addon.quantUnpack(weight.kind, weight.data, weight.scales, out, weight.rows, weight.cols);
  return out;
}

/** `{ x: [out, in] float32 }`, `{ dtype }` → the same weight held packed (see FUSED.packWeight). */
function packWeightKernel(addon: NativeAddon): KernelFunc {
  return (({ inputs, backend, attrs }: KernelArgs) => {
    const { x } = inputs as { x: TensorInfo };
    const dtype = String(attrs?.dtype) as PackedDtype;
    const kind = PACKED_DTYPES.indexOf(dtype);
    if (kind < 0) throw new Error(`${FUSED.packWeight}: unknown dtype '${dtype}'; supported: ${PACKED_DTYPES.join(', ')}`);
    if (x.dtype !== 'float32' || x.shape.length !== 2) {
      throw new Error(`${FUSED.packWeight}: x must be a float32 [out, in] weight, got ${x.dtype} [${x.shape}]`);
    }
    const [rows, cols] = x.shape as [number, number];
    const data = dtype === 'int8' ? new Int8Array(rows * cols) : new Uint16Array(rows * cols);
    const scales = dtype === 'int8' ? new Float32Array(rows) : null;
    const source = values(backend, x);
    addon.quantPack(kind, source, data, scales, rows, cols);
    const weight: PackedWeight = { kind, dtype, rows, cols, data, scales };
    // The float32 source (about to be replaced by this packed weight) is garbage once the load
    // moves on: its memory goes back to the system when collected.
    const loads = backend as Backend & { releaseWhenCollected?: (values: ArrayBufferView) => void };
    loads.releaseWhenCollected?.(source);
    const info = backend.makeTensorInfo([rows, cols], 'float32', packedValues(weight) as Float32Array);
    markPacked(info.dataId, { dtype, bytes: data.byteLength + (scales?.byteLength ?? 0) });
    return info;
  }) as unknown as KernelFunc;
}

/** `act(x · Wᵀ + b)` into `out` with W packed or float32. */
function linearInto(addon: NativeAddon, backend: Backend, xs: Float32Array, inF: number, weight: TensorInfo, bias: TensorInfo | undefined, out: Float32Array, act: number): void {
  const n = weight.shape[0]!;
  const b = bias === undefined ? null : values(backend, bias);
  const packed = packedOf(backend, weight);
  if (packed === undefined) {
    addon.ffnLinear(xs, values(backend, weight), b, out, inF, n, act);
  } else {
    addon.quantLinear(xs, packed.kind, packed.data, packed.scales, b, out, inF, n, act);
  }
}

/**
 * FUSED.linear with a packed weight read by quant.c; a float32 weight goes to the float32
 * kernel (`float32Kernel`), unchanged.
 */
function linearKernel(addon: NativeAddon, float32Kernel: KernelFunc): KernelFunc {
  return ((args: KernelArgs) => {
    const { x, weight, bias, residual } = args.inputs as { x: TensorInfo; weight: TensorInfo; bias?: TensorInfo; residual?: TensorInfo };
    if (weight === undefined || packedOf(args.backend, weight) === undefined) return (float32Kernel as unknown as (a: KernelArgs) => TensorInfo)(args);
    const act = activationCode(FUSED.linear, args.attrs);
    requireFloat32(FUSED.linear, args.inputs);
    const n = outFeatures(FUSED.linear, 'weight', x, weight);
    requireShape(FUSED.linear, 'bias', bias, [n]);
    const shape = [...x.shape.slice(0, -1), n];
    requireShape(FUSED.linear, 'residual', residual, shape);
    const out = allocate(args.backend, tf.util.sizeFromShape(shape));
    if (out.length > 0) {
      linearInto(addon, args.backend, values(args.backend, x), x.shape[x.shape.length - 1]!, weight, bias, out, act);
      addResidual(addon, args.backend, out, residual);
    }
    return args.backend.makeTensorInfo(shape, 'float32', out);
  }) as unknown as KernelFunc;
}

/**
 * FUSED.linears: `{ x, weight0, bias0?, weight1, ..., normWeight? }` → one output per weight,
 * float32 or packed weights alike, in one call to quant.c (one split of all the maps' rows for a
 * single row of x); with `normWeight`, of x's RMSNorm (attr `normEpsilon`).
 */
function linearsKernel(addon: NativeAddon): KernelFunc {
  return (({ inputs, backend, attrs }: KernelArgs) => {
    const { x, normWeight } = inputs as { x: TensorInfo; normWeight?: TensorInfo };
    const count = Object.keys(inputs).filter((name) => /^weight\d+$/.test(name)).length;
    if (count === 0 || count > 8) throw new Error(`${FUSED.linears}: give 1 to 8 weights (weight0, weight1, ...), got ${count}`);
    for (const name of Object.keys(inputs)) {
      const index = /^(?:weight|bias)(\d+)$/.exec(name)?.[1];
      if (name !== 'x' && name !== 'normWeight' && (index === undefined || Number(index) >= count)) throw new Error(`${FUSED.linears}: unexpected input '${name}'`);
    }
    // A packed weight's tensor is float32 too: only its storage is narrow.
    requireFloat32(FUSED.linears, inputs);
    const inF = x.shape[x.shape.length - 1]!;
    requireShape(FUSED.linears, 'normWeight', normWeight, [inF]);
    const rows = tf.util.sizeFromShape(x.shape.slice(0, -1));
    const weights: TensorInfo[] = [];
    const biases: Array<TensorInfo | undefined> = [];
    const outs: Float32Array[] = [];
    const shapes: number[][] = [];
    for (let j = 0; j < count; j++) {
      const weight = inputs[`weight${j}`];
      const bias = inputs[`bias${j}`];
      if (weight === undefined) throw new Error(`${FUSED.linears}: input 'weight${j}' is missing`);
      const n = outFeatures(FUSED.linears, `weight${j}`, x, weight);
      requireShape(FUSED.linears, `bias${j}`, bias, [n]);
      weights.push(weight);
      biases.push(bias);
      outs.push(allocate(backend, rows * n));
      shapes.push([...x.shape.slice(0, -1), n]);
    }
    if (rows > 0) linearsInto(addon, backend, projectedRows(addon, backend, x, normWeight, attrs), inF, weights, biases, outs);
    return outs.map((out, j) => backend.makeTensorInfo(shapes[j]!, 'float32', out));
  }) as unknown as KernelFunc;
}

/**
 * `outs[j] = xs · weights[j]ᵀ + biases[j]` for rows of `inF` values, the weights float32 or packed
 * (shapes already checked): one call of the addon's `linearMany`, which splits all the maps' rows
 * over the threads at once for a single row, and gives each map its own linear kernel's values.
 */
export function linearsInto(
  addon: NativeAddon,
  backend: Backend,
  xs: Float32Array,
  inF: number,
  weights: readonly TensorInfo[],
  biases: ReadonlyArray<TensorInfo | undefined>,
  outs: Float32Array[],
): void {
  const kinds = new Int32Array(weights.length);
  const data: Array<Float32Array | Uint16Array | Int8Array> = [];
  const scales: Array<Float32Array | null> = [];
  weights.forEach((weight, j) => {
    const packed = packedOf(backend, weight);
    kinds[j] = packed?.kind ?? -1;
    data.push(packed?.data ?? values(backend, weight));
    scales.push(packed?.scales ?? null);
  });
  const biasValues = biases.map((bias) => (bias === undefined ? null : values(backend, bias)));
  addon.linearMany(xs, inF, kinds, data, scales, biasValues, outs);
}

/**
 * Inputs `{ x: [..., in], gateWeight: [out, in], upWeight: [out, in], gateBias?: [out], upBias?: [out],
 * normWeight?: [in] }`, attrs `{ activation, normEpsilon? }`; output `act(x · gateWeightᵀ + gateBias) *
 * (x · upWeightᵀ + upBias)`, `[..., out]`: the first half of a gated (SwiGLU-style) MLP in one
 * kernel, with `normWeight` after an RMSNorm of x (a pre-norm block's); float32 or packed weights
 * (see {@link gatedLinearInto}).
 */
function gatedLinearKernel(addon: NativeAddon): KernelFunc {
  return (({ inputs, backend, attrs }: KernelArgs) => {
    const gated = inputs as GatedLinearInputs;
    const { act, n, shape } = gatedLinearChecks(inputs, attrs);
    const out = allocate(backend, tf.util.sizeFromShape(shape));
    if (out.length > 0) gatedLinearInto(addon, backend, projectedRows(addon, backend, gated.x, gated.normWeight, attrs), gated, out, n, act);
    return backend.makeTensorInfo(shape, 'float32', out);
  }) as unknown as KernelFunc;
}

/**
 * `out = act(xs · gateWeightᵀ + gateBias) * (xs · upWeightᵀ + upBias)` for rows of xs (inputs
 * checked): float32 weights in one call to ffn.c, both packed in one format in one
 * call to quant.c, a mix of formats (one weight reassigned as float32) as two linear calls and the
 * gated activation.
 */
function gatedLinearInto(addon: NativeAddon, backend: Backend, xs: Float32Array, inputs: GatedLinearInputs, out: Float32Array, n: number, act: number): void {
  const { x, gateWeight, upWeight, gateBias, upBias } = inputs;
  const inF = x.shape[x.shape.length - 1]!;
  const gate = packedOf(backend, gateWeight);
  const up = packedOf(backend, upWeight);
  const bg = gateBias === undefined ? null : values(backend, gateBias);
  const bu = upBias === undefined ? null : values(backend, upBias);
  if (gate === undefined && up === undefined) {
    addon.ffnGatedLinear(xs, values(backend, gateWeight), values(backend, upWeight), bg, bu, out, inF, n, act);
  } else if (gate !== undefined && up !== undefined && gate.kind === up.kind) {
    addon.quantGatedLinear(xs, gate.kind, gate.data, gate.scales, up.data, up.scales, bg, bu, out, inF, n, act);
  } else {
    const upOut = new Float32Array(out.length);
    linearInto(addon, backend, xs, inF, gateWeight, gateBias, out, 0);
    linearInto(addon, backend, xs, inF, upWeight, upBias, upOut, 0);
    addon.ffnActivation(act, out, upOut, out);
  }
}

/**
 * FUSED.gatedFeedForward: FUSED.gatedLinear, then FUSED.linear by `downWeight` plus `residual`, each
 * with its own kernel's checks and values (float32 or packed weights), run back to back on arrays:
 * one engine dispatch for a pre-norm block's whole gated feed-forward, the gated activations in a
 * scratch slot between the two. All checks come before any work.
 */
function gatedFeedForwardKernel(addon: NativeAddon): KernelFunc {
  const kernel = FUSED.gatedFeedForward;
  return (({ inputs, backend, attrs }: KernelArgs) => {
    const { downWeight, downBias, residual, ...gated } = inputs;
    if (downWeight === undefined) throw new Error(`${kernel}: input 'downWeight' is missing`);
    const { act, n, shape } = gatedLinearChecks(gated, attrs);
    // FUSED.linear's checks of the down projection, on the gated activations.
    requireFloat32(FUSED.linear, { weight: downWeight, bias: downBias, residual });
    const hidden = outFeatures(FUSED.linear, 'weight', { shape } as TensorInfo, downWeight);
    requireShape(FUSED.linear, 'bias', downBias, [hidden]);
    const outShape = [...shape.slice(0, -1), hidden];
    requireShape(FUSED.linear, 'residual', residual, outShape);
    const out = allocate(backend, tf.util.sizeFromShape(outShape));
    if (out.length > 0) {
      const gatedInputs = gated as GatedLinearInputs;
      const activations = scratch('gated', tf.util.sizeFromShape(shape));
      gatedLinearInto(addon, backend, projectedRows(addon, backend, gatedInputs.x, gatedInputs.normWeight, attrs), gatedInputs, activations, n, act);
      linearsInto(addon, backend, activations, n, [downWeight], [downBias], [out]);
      addResidual(addon, backend, out, residual);
    }
    return backend.makeTensorInfo(outShape, 'float32', out);
  }) as unknown as KernelFunc;
}

/** FUSED.mambaMixer's operands in the order the addon takes them (binding.c's MambaMixer). */
const MAMBA_OPERANDS = [
  'hidden', 'keep', 'convState', 'ssmState', 'inWeight', 'inBias', 'convWeight', 'convBias', 'xWeight',
  'dtWeight', 'dtBias', 'A', 'D', 'outWeight', 'outBias', 'dtNorm', 'bNorm', 'cNorm', 'preNorm',
] as const;

/** The Mamba mixer's projections as the addon's `packed` argument lists them. */
const MAMBA_PROJECTIONS = ['inWeight', 'outWeight', 'xWeight', 'dtWeight'] as const;

/**
 * FUSED.mambaMixer with any of its projections packed: the same kernel (native/src/mamba.c)
 * reading them through quant.c. Without packed projections the float32 kernel runs unchanged.
 */
function mambaMixerKernel(addon: NativeAddon, float32Kernel: KernelFunc): KernelFunc {
  return ((args: KernelArgs) => {
    const { inputs, backend, attrs } = args;
    const { hidden, inWeight, convWeight, xWeight, A } = inputs as Record<string, TensorInfo>;
    const packedBy = new Map(MAMBA_PROJECTIONS.map((name) => [name as string, inputs[name] === undefined ? undefined : packedOf(backend, inputs[name]!)]));
    if ([...packedBy.values()].every((p) => p === undefined)) return (float32Kernel as unknown as (a: KernelArgs) => TensorInfo[])(args);
    const kernel = FUSED.mambaMixer;
    for (const name of MAMBA_OPERANDS) {
      const t = inputs[name];
      if (t !== undefined && t.dtype !== 'float32') throw new Error(`${kernel}: input '${name}' must be float32, got ${t.dtype}`);
    }
    if (hidden === undefined || hidden.shape.length !== 3) throw new Error(`${kernel}: hidden must be [batch, length, hidden]`);
    const [batch, len, size] = hidden.shape as [number, number, number];
    const inner = inWeight!.shape[0]! / 2;
    const nstate = A!.shape[1]!;
    const kernelSize = convWeight!.shape[convWeight!.shape.length - 1]!;
    const rank = xWeight!.shape[0]! - 2 * nstate;
    const expected: Record<string, number[]> = {
      inWeight: [2 * inner, size], inBias: [2 * inner], convWeight: [inner, 1, kernelSize], convBias: [inner],
      xWeight: [rank + 2 * nstate, inner], dtWeight: [inner, rank], dtBias: [inner], A: [inner, nstate],
      D: [inner], outWeight: [size, inner], outBias: [size], dtNorm: [rank], bNorm: [nstate], cNorm: [nstate],
      convState: [batch, inner, kernelSize], ssmState: [batch, inner, nstate], keep: [batch, len], preNorm: [size],
    };
    for (const [name, shape] of Object.entries(expected)) requireShape(kernel, name, inputs[name], shape);
    for (const name of ['dtWeight', 'dtBias', 'D', 'outWeight']) {
      if (inputs[name] === undefined) throw new Error(`${kernel}: input '${name}' is missing`);
    }
    const operands = MAMBA_OPERANDS.map((name) => {
      const t = inputs[name];
      if (t === undefined || packedBy.get(name) !== undefined) return null;
      return values(backend, t);
    });
    const out = allocate(backend, batch * len * size);
    const convState = allocate(backend, batch * inner * kernelSize);
    const ssmState = allocate(backend, batch * inner * nstate);
    const dims = Int32Array.from([batch, len, size, inner, nstate, rank, kernelSize]);
    const packed = MAMBA_PROJECTIONS.flatMap((name) => {
      const p = packedBy.get(name);
      return [p?.kind ?? 0, p?.data ?? null, p?.scales ?? null] as const;
    });
    if (out.length > 0) {
      addon.quantMambaMixer(dims, operands, [out, convState, ssmState], Number(attrs?.normEps ?? 1e-6), Number(attrs?.preNormEps ?? 1e-6), Boolean(attrs?.addResidual), packed);
    }
    return [
      backend.makeTensorInfo([batch, len, size], 'float32', out),
      backend.makeTensorInfo([batch, inner, kernelSize], 'float32', convState),
      backend.makeTensorInfo([batch, inner, nstate], 'float32', ssmState),
    ];
  }) as unknown as KernelFunc;
}

/**
 * GatherV2 from a packed table (an embedding looked up by token id): each gathered row widened to
 * float32. Only rows along axis 0 with batchDims 0 (what an embedding lookup is); anything else
 * on a packed tensor is refused by the storage stand-in like every other kernel.
 */
function gatherKernel(addon: NativeAddon, float32Kernel: KernelFunc): KernelFunc {
  return ((args: KernelArgs) => {
    const { x, indices } = args.inputs as { x: TensorInfo; indices: TensorInfo };
    const packed = x === undefined ? undefined : packedOf(args.backend, x);
    const { axis, batchDims } = (args.attrs ?? {}) as unknown as { axis: number; batchDims?: number };
    if (packed === undefined || tf.util.parseAxisParam(axis, x.shape)[0] !== 0 || (batchDims ?? 0) !== 0) {
      return (float32Kernel as unknown as (a: KernelArgs) => TensorInfo)(args);
    }
    const { rows, cols } = packed;
    const idx = args.backend.data.get(indices.dataId).values as ArrayLike<number>;
    const out = allocate(args.backend, idx.length * cols);
    for (let i = 0; i < idx.length; i++) {
      const row = idx[i]!;
      tf.util.assert(row <= rows - 1 && row >= 0, () => `GatherV2: the index value ${row} is not in [0, ${rows - 1}]`);
      const scales = packed.scales === null ? null : packed.scales.subarray(row, row + 1);
      addon.quantUnpack(packed.kind, packed.data.subarray(row * cols, (row + 1) * cols), scales, out.subarray(i * cols, (i + 1) * cols), 1, cols);
    }
    return args.backend.makeTensorInfo([...indices.shape, cols], 'float32', out);
  }) as unknown as KernelFunc;
}

/**
 * The packing kernel, FUSED.gatedLinear, FUSED.linears and FUSED.gatedFeedForward (float32 and
 * packed weights alike), and `configs` (the backend's own kernels) with FUSED.linear,
 * FUSED.mambaMixer and GatherV2 (embedding lookups) taught to read packed weights.
 */
export function withPackedWeights(addon: NativeAddon, backendName: string, configs: KernelConfig[]): KernelConfig[] {
  const wrapped = configs.map((config) => {
    if (config.kernelName === FUSED.linear) return { ...config, kernelFunc: linearKernel(addon, config.kernelFunc) };
    if (config.kernelName === FUSED.mambaMixer) return { ...config, kernelFunc: mambaMixerKernel(addon, config.kernelFunc) };
    if (config.kernelName === tf.GatherV2) return { ...config, kernelFunc: gatherKernel(addon, config.kernelFunc) };
    return config;
  });
  return [
    ...wrapped,
    { kernelName: FUSED.gatedLinear, backendName, kernelFunc: gatedLinearKernel(addon) },
    { kernelName: FUSED.linears, backendName, kernelFunc: linearsKernel(addon) },
    { kernelName: FUSED.gatedFeedForward, backendName, kernelFunc: gatedFeedForwardKernel(addon) },
    { kernelName: FUSED.packWeight, backendName, kernelFunc: packWeightKernel(addon) },
  ];
}
