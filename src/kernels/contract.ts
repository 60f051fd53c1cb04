import * as tf from '@tensorflow/tfjs-core';
import type { TensorInfo } from '@tensorflow/tfjs-core';

/**
 * The contract between Tessera's ops and its own tfjs kernels (native/ and wasm/): the kernel
 * names, the limits a backend declares for its implementation, and the input checks, so that a
 * wrong dtype or shape fails with the kernel's and the input's names rather than deep inside the
 * computation.
 */

/**
 * Fused kernels a backend may register (the native addon does; see docs/native-backend.md), by
 * the tfjs kernel name. Ops run one of these instead of their op-by-op path only where
 * src/ops/dispatch.ts says so; the op-by-op path stays the reference (and what wasm, cpu and
 * gradient recording use).
 */
export const FUSED = {
  /** `{ x, weight?: [H], residual? }`, `{ epsilon }` → norm(x + residual). */
  rmsNorm: 'TesseraRMSNorm',
  /** `{ x, gamma?: [H], beta?: [H], residual? }`, `{ epsilon }` → norm(x + residual). */
  layerNorm: 'TesseraLayerNorm',
  /**
   * `{ x: [..., in], weight: [out, in], bias?: [out], residual?: [..., out] }`, `{ activation }` →
   * `act(x·Wᵀ + b) + residual` (the residual connection around a pre-norm sublayer's last projection).
   */
  linear: 'TesseraLinear',
  /**
   * Several linear maps of one x: `{ x: [..., in], weight0: [out0, in], bias0?: [out0], weight1, ...,
   * normWeight?: [in] }` (at most 8 weights), `{ normEpsilon? }` → `[x·W0ᵀ + b0, x·W1ᵀ + b1, ...]`,
   * each equal to its own FUSED.linear; with `normWeight`, of RMSNorm(x) as FUSED.rmsNorm makes it.
   */
  linears: 'TesseraLinears',
  /**
   * `{ x, gateWeight, upWeight, gateBias?, upBias?, normWeight? }`, `{ activation, normEpsilon? }` →
   * `act(x·Wgᵀ + bg) * (x·Wuᵀ + bu)`; with `normWeight`, of RMSNorm(x) as FUSED.rmsNorm makes it.
   */
  gatedLinear: 'TesseraGatedLinear',
  /**
   * A whole gated feed-forward with its residual connection: `{ x, gateWeight, upWeight,
   * downWeight, gateBias?, upBias?, downBias?, normWeight?, residual? }`, `{ activation,
   * normEpsilon? }` → FUSED.linear of FUSED.gatedLinear's output by `downWeight` (+ `downBias`),
   * plus `residual`: the same values as those two kernels, in one.
   */
  gatedFeedForward: 'TesseraGatedFeedForward',
  /** `{ x, up? }`, `{ activation }` → `act(x)` (times `up`). */
  activation: 'TesseraActivation',
  /**
   * Greedy decoding's pick: `{ logits: [..., V] }` → int32 `[rows, 2]`, per row of V logits the
   * index of the largest (the lowest among equal ones, as torch.argmax) and a check: -1 when a
   * token can be chosen, else the index of the first NaN or +Infinity, or V when every logit is
   * -Infinity.
   */
  greedyPick: 'TesseraGreedyPick',
  /** Attention after the q/k/v projections. */
  attention: 'TesseraAttention',
  /**
   * FUSED.attention followed by the output projection and the residual: its inputs and attrs plus
   * `outWeight [H, heads·D]`, optional `outBias [H]` and `residual [B, L, H]` → FUSED.linear of its
   * context (the same values), then its caches as FUSED.attention returns them. In place of q, k
   * and v it may take `x [B, L, in]` with `qWeight`, `kWeight`, `vWeight` (optional `qBias`,
   * `kBias`, `vBias`, and `normWeight [in]` with attr `normEpsilon`): FUSED.linears of x makes them.
   */
  attentionProjected: 'TesseraAttentionProjected',
  /**
   * FUSED.attention's gradient where it has no rotary tables and no cache (training applies
   * rotary as FUSED.rotary): `{ q, k, v, mask?, dy }`, `{ numHeads, numKvHeads, headDim, causal,
   * scale }` → `[dq, dk, dv]`.
   */
  attentionBackward: 'TesseraAttentionBackward',
  /** The Mamba selective scan: `{ u, delta, A, B, C, D, h0? }` → `[y, h]` (see {@link scanKernelInputs}). */
  selectiveScan: 'TesseraSelectiveScan',
  /**
   * The selective scan's gradient: `{ u, delta, A, B, C, D, h0, dy: [B,L,D], dh: [B,D,N] }` →
   * `[du, ddelta, dA, dB, dC, dD, dh0]`, each shaped like its input.
   */
  selectiveScanBackward: 'TesseraSelectiveScanBackward',
  /**
   * Rotary embedding on head-major `{ x: [B, H, L, headDim], cos, sin: [B or 1, 1, L, rotDim] }`
   * or token-major `x: [B, L, H·headDim]` with attr `heads` (HF's rotate-half pairs; values past
   * rotDim pass through), `{ transpose, heads? }`: transpose 1 applies the transposed rotation,
   * which is the gradient.
   */
  rotary: 'TesseraRotary',
  /** FUSED.activation's gradient: `{ x, up?, dy }`, `{ activation }` → `[dx]`, or `[dx, dup]` with `up`. */
  activationBackward: 'TesseraActivationBackward',
  /** FUSED.rmsNorm's gradient: `{ x, residual?, weight?, dy }`, `{ epsilon }` → `[ds, dweight]` (ds: of x and of residual). */
  rmsNormBackward: 'TesseraRMSNormBackward',
  /** FUSED.layerNorm's gradient: `{ x, residual?, gamma?, dy }`, `{ epsilon }` → `[ds, dgamma, dbeta]`. */
  layerNormBackward: 'TesseraLayerNormBackward',
  /**
   * Mamba's causal depthwise conv from an empty window (zeros before position 0): `{ x: [B, L, D],
   * weight: [D, 1, K], bias?: [D] }` → y [B, L, D].
   */
  causalConv: 'TesseraCausalConv',
  /** Its gradient: `{ x, weight, dy }` → `[dx, dweight, dbias]`. */
  causalConvBackward: 'TesseraCausalConvBackward',
  /** The whole Mamba mixer, or its pre-norm block. */
  mambaMixer: 'TesseraMambaMixer',
  /**
   * One Adam update of one weight: `{ value, gradient, m, v }`, `{ learningRate, beta1, beta2,
   * epsilon, correction1, correction2 }` (1 − βᵗ), optional `weightDecay` (AdamW's decoupled decay)
   * and `inPlace` (the outputs may take over the buffers of value, m and v where nothing else can
   * see them; the caller assigns them back at once) → `[value', m', v']`.
   */
  adam: 'TesseraAdam',
  /** Cross-entropy per row: `{ logits: [N, V], targets: int32 [N] }` → `[loss [N], logSumExp [N]]`. */
  crossEntropy: 'TesseraCrossEntropy',
  /** Its gradient: `{ logits, targets, logSumExp, dy: [N] }` → `dy · (softmax(logits) − onehot(targets))`, [N, V]. */
  crossEntropyBackward: 'TesseraCrossEntropyBackward',
  /**
   * KL(teacher ‖ student) per row at a temperature: `{ student: [N, V], teacher: [N, V] }`,
   * `{ temperature }` → `[kl [N], lseStudent [N], lseTeacher [N]]` (the log-sum-exps of logits / T).
   */
  klDivergence: 'TesseraKLDivergence',
  /**
   * Its gradient: `{ student, teacher, lseStudent, lseTeacher, kl, dy: [N] }`, `{ temperature,
   * wrt: 'student' | 'teacher' }` → the gradient of Σ dy·kl with respect to those logits, [N, V].
   */
  klDivergenceBackward: 'TesseraKLDivergenceBackward',
  /**
   * Hold a linear weight in a narrower format: `{ x: [out, in] float32 }`, `{ dtype }` (a
   * {@link PackedDtype}) → a float32 tensor of the same shape whose storage is packed (see
   * {@link packedStorage}); the linear kernels read it directly, reading it out (`dataSync`) widens it.
   */
  packWeight: 'TesseraPackWeight',
} as const;

/** The formats {@link FUSED.packWeight} stores a weight in (int8: one float32 scale per output row). */
export const PACKED_DTYPES = ['bfloat16', 'float16', 'int8'] as const;
export type PackedDtype = (typeof PACKED_DTYPES)[number];

/** What a packed tensor's storage holds. */
export interface PackedStorage {
  dtype: PackedDtype;
  /** Bytes held: the packed values, plus int8's scales. */
  bytes: number;
}

const packedData = new WeakMap<object, PackedStorage>();

/** Recorded by a backend's FUSED.packWeight for the dataId it made. */
export function markPacked(dataId: object, storage: PackedStorage): void {
  packedData.set(dataId, storage);
}

/** The packed storage behind `t`, or undefined for a tensor held as its own dtype. */
export function packedStorage(t: TensorInfo): PackedStorage | undefined {
  return packedData.get(t.dataId);
}

/**
 * The `activation` attr that FUSED.linear, FUSED.gatedLinear and FUSED.activation take ('linear'
 * for none), in the order the native kernels number them (native/src/ffn.h). src/ops/activation.ts
 * maps HF's names onto these.
 */
export const FUSED_ACTIVATIONS = ['linear', 'gelu', 'gelu_tanh', 'silu', 'relu', 'tanh'] as const;
export type FusedActivation = (typeof FUSED_ACTIVATIONS)[number];

/**
 * Fused kernels whose gradient runs a backward kernel (a gradient registered for the kernel, or
 * the op's own `tf.customGrad` around it): while gradients are recorded the forward kernel may
 * run only on a backend that also registers this one.
 */
export const BACKWARD_KERNEL: Readonly<Partial<Record<string, string>>> = {
  [FUSED.selectiveScan]: FUSED.selectiveScanBackward,
  [FUSED.crossEntropy]: FUSED.crossEntropyBackward,
  [FUSED.klDivergence]: FUSED.klDivergenceBackward,
  [FUSED.activation]: FUSED.activationBackward,
  [FUSED.rmsNorm]: FUSED.rmsNormBackward,
  [FUSED.layerNorm]: FUSED.layerNormBackward,
  [FUSED.rotary]: FUSED.rotary,
  [FUSED.attention]: FUSED.attentionBackward,
  [FUSED.causalConv]: FUSED.causalConvBackward,
};

/** `kernel@backend` → the largest state size its implementation there takes. */
const maxStateSizes = new Map<string, number>();

/**
 * Declared by a backend that registers `kernel` with a limit on the state size N (the native scan
 * kernels keep a channel's state in a fixed array). Above it the ops take their reference path and
 * give what the other backends give rather than an error.
 */
export function declareMaxStateSize(kernel: string, backendName: string, maxStateSize: number): void {
  maxStateSizes.set(`${kernel}@${backendName}`, maxStateSize);
}

/** The largest state size `kernel` takes on `backendName`, or undefined when it declared no limit. */
export function maxStateSize(kernel: string, backendName: string): number | undefined {
  return maxStateSizes.get(`${kernel}@${backendName}`);
}

/** `kernel@backend` pairs whose implementation is meant for sequences, not single tokens. */
const sequencesOnly = new Set<string>();

/**
 * Declared by a backend whose `kernel` loses to the op's own composition on a single token (the
 * wasm scan kernel is JS: it wins on prompts, but a decode step is faster as a few vectorised ops).
 */
export function declareSequencesOnly(kernel: string, backendName: string): void {
  sequencesOnly.add(`${kernel}@${backendName}`);
}

/** Whether `kernel` on `backendName` was declared for sequences only. */
export function isSequencesOnly(kernel: string, backendName: string): boolean {
  return sequencesOnly.has(`${kernel}@${backendName}`);
}

/** Every given input is float32. */
export function requireFloat32(kernel: string, inputs: Record<string, TensorInfo | undefined>): void {
  // for...in rather than Object.entries: every kernel call of a decode step runs this.
  for (const name in inputs) {
    const t = inputs[name];
    if (t !== undefined && t.dtype !== 'float32') {
      throw new Error(`${kernel}: input '${name}' must be float32, got ${t.dtype}`);
    }
  }
}

/** Each of `names` is given. */
export function requirePresent(kernel: string, inputs: Record<string, TensorInfo | undefined>, names: readonly string[]): void {
  for (const name of names) {
    if (inputs[name] === undefined) throw new Error(`${kernel}: input '${name}' is missing`);
  }
}

/** `t`, if given, has exactly `shape`. */
export function requireShape(kernel: string, name: string, t: TensorInfo | undefined, shape: number[]): void {
  if (t !== undefined && !tf.util.arraysEqual(t.shape, shape)) {
    throw new Error(`${kernel}: input '${name}' must have shape [${shape}], got [${t.shape}]`);
  }
}

/** The selective scan's inputs: u, delta [B, L, D], A [D, N], B, C [B, L, N], D [D], h0? [B, D, N]. */
export interface ScanKernelInputs {
  u: TensorInfo;
  delta: TensorInfo;
  A: TensorInfo;
  B: TensorInfo;
  C: TensorInfo;
  D: TensorInfo;
  h0?: TensorInfo;
}

/**
 * Check a `TesseraSelectiveScan` call (each backend's implementation takes the same inputs) and
 * return them with their sizes.
 */
export function scanKernelInputs(
  kernel: string,
  inputs: Record<string, TensorInfo | undefined>,
): ScanKernelInputs & { batch: number; len: number; dim: number; nstate: number } {
  requireFloat32(kernel, inputs);
  const { u, delta, A, B, C, D, h0 } = inputs;
  requirePresent(kernel, inputs, ['u', 'delta', 'A', 'B', 'C', 'D']);
  if (u!.shape.length !== 3 || A!.shape.length !== 2) {
    throw new Error(`${kernel}: u must be [B, L, D] and A [D, N], got [${u!.shape}] and [${A!.shape}]`);
  }
  const [batch, len, dim] = u!.shape as [number, number, number];
  const nstate = A!.shape[1]!;
  requireShape(kernel, 'delta', delta, [batch, len, dim]);
  requireShape(kernel, 'A', A, [dim, nstate]);
  requireShape(kernel, 'B', B, [batch, len, nstate]);
  requireShape(kernel, 'C', C, [batch, len, nstate]);
  requireShape(kernel, 'D', D, [dim]);
  requireShape(kernel, 'h0', h0, [batch, dim, nstate]);
  return { u: u!, delta: delta!, A: A!, B: B!, C: C!, D: D!, h0, batch, len, dim, nstate };
}
