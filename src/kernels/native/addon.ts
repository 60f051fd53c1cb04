import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';

import { FUSED_ACTIVATIONS } from '../contract.js';

/** Which OpenBLAS the addon runs on, as OpenBLAS reports it. */
export interface NativeInfo {
  /** The kernel set OpenBLAS chose, e.g. `Haswell`, `SkylakeX`; `Prescott` means generic SSE3. */
  coreName: string;
  /** OpenBLAS build string (version, DYNAMIC_ARCH, thread limit). */
  config: string;
  /** Threads OpenBLAS uses for one call. */
  numThreads: number;
}

/**
 * A GEMM over {@link NativeAddon.matmul}'s operands (its arguments before the activation): for each batch i,
 * `out_i = op(A[aIdx[i]]) @ op(B[bIdx[i]]) + bias` (no activation), op transposing where
 * `transA`/`transB`; `bias` null, one value, or n values.
 */
export type GemmEntry = (
  a: Float32Array,
  b: Float32Array,
  out: Float32Array,
  aIdx: Int32Array,
  bIdx: Int32Array,
  m: number,
  n: number,
  k: number,
  transA: boolean,
  transB: boolean,
  bias: Float32Array | null,
) => void;

/**
 * The functions of `tessera_native.node` (native/src/binding.c). All take float32 data in
 * row-major order and write into caller-allocated outputs; sizes are checked and a TypeError is
 * thrown on a mismatch. They run synchronously on the calling thread (BLAS may fan out).
 */
export interface NativeAddon {
  /**
   * `out[i] = act(op(A_i) @ op(B_i) + bias)` for `i < aIdx.length`, where `A_i` is matrix
   * `aIdx[i]` of `a` (m x k, or k x m stored when `transA`) and `B_i` matrix `bIdx[i]` of `b`
   * (k x n, or n x k stored when `transB`). `out` holds `aIdx.length * m * n` values. `bias`
   * and `prelu` hold n values (one per output column) or 1. `activation` is an index into
   * {@link ACTIVATIONS}; `alpha` is the leakyrelu slope.
   */
  matmul(...args: [...operands: Parameters<GemmEntry>, activation: number, alpha: number, prelu: Float32Array | null]): void;
  /** A copy of `array` in memory on 2 MiB pages (native/src/memory.c), or null where none can be had. */
  hugePageCopy(array: Float32Array): Float32Array | null;
  /** Give memory the C allocator holds free back to the system (malloc_trim); whether any was. */
  releaseFreeMemory(): boolean;
  /**
   * The whole Mamba mixer (native/src/mamba.c): `dims` = [batch, len, hidden, inner, nstate, rank,
   * kernel]; `operands` and `outputs` in the order binding.c's MambaMixer lists them. With a
   * `preNorm` operand and `addResidual`, the pre-norm residual block around the mixer.
   */
  mambaMixer(
    dims: Int32Array,
    operands: Array<Float32Array | null>,
    outputs: Float32Array[],
    eps: number,
    preNormEps: number,
    addResidual: boolean,
  ): void;
  /** See {@link selectiveScan} in ./ops.ts for shapes; `y` and `hOut` are outputs. */
  selectiveScan(
    u: Float32Array,
    delta: Float32Array,
    A: Float32Array,
    Bm: Float32Array,
    Cm: Float32Array,
    Dvec: Float32Array,
    h0: Float32Array | null,
    y: Float32Array,
    hOut: Float32Array,
    batch: number,
    len: number,
    dim: number,
    nstate: number,
  ): void;
  /**
   * RMSNorm of each row of width `h` of `x` (or of `x + residual`, summed row by row into `y` and
   * normalised there: one pass for a post-norm block) into `y`, which may be `x`.
   */
  rmsNorm(x: Float32Array, residual: Float32Array | null, weight: Float32Array | null, y: Float32Array, h: number, eps: number): void;
  /** LayerNorm of each row of width `h` of `x` (or of `x + residual`, as {@link NativeAddon.rmsNorm}) into `y`. */
  layerNorm(
    x: Float32Array,
    residual: Float32Array | null,
    gamma: Float32Array | null,
    beta: Float32Array | null,
    y: Float32Array,
    h: number,
    eps: number,
  ): void;
  /**
   * `out = a (op) b` over `shape` (rank <= 8, `out` contiguous); `aStrides`/`bStrides` give each
   * operand's element stride per dimension, 0 where it broadcasts. `op` indexes {@link BINARY_OPS}.
   */
  binary(
    op: number,
    a: Float32Array,
    aStrides: Int32Array,
    b: Float32Array,
    bStrides: Int32Array,
    out: Float32Array,
    shape: Int32Array,
  ): void;
  /** `out` (contiguous, `shape`) = `x` read with `xStrides`: a transpose when strides are permuted. */
  stridedCopy(x: Float32Array, xStrides: Int32Array, out: Float32Array, shape: Int32Array): void;
  /** `out[i] = op(x[i])`; `op` indexes {@link UNARY_OPS}. */
  unary(op: number, x: Float32Array, out: Float32Array): void;
  /** Softmax over rows of width `cols`. */
  softmax(x: Float32Array, out: Float32Array, cols: number): void;
  /** One value per row of width `cols`: `op` 0 sum, 1 mean, 2 max, 3 min. */
  reduce(op: number, x: Float32Array, out: Float32Array, cols: number): void;
  /** FUSED.greedyPick over rows of `cols` logits: a [token, check] pair per row into `out`. */
  greedyPick(logits: Float32Array, out: Int32Array, cols: number): void;
  /**
   * Fused attention into `out` [B, Lq, H·headDim] from token-major `q`; `dims` =
   * [batch, qLen, kvLen, heads, kvHeads, headDim, kLayout, vLayout, causal, kvCapacity?] with layouts
   * 0 = [B, S, kvHeads·headDim], 1 = [B, kvHeads, kvCapacity (default S), headDim] (the first S
   * positions of each head are the keys). `mask` [B, S]: 0 = padding.
   * See src/kernels/native/attention.ts.
   */
  attention(
    q: Float32Array,
    k: Float32Array,
    v: Float32Array,
    mask: Float32Array | null,
    out: Float32Array,
    dims: Int32Array,
    scale: number,
  ): void;
  /**
   * Tests and benchmarks: run a prefill's float32 attention through OpenBLAS (true) where it would
   * run on the AVX-512 register tiles of native/src/attention-f32.c (head sizes that are multiples
   * of 16), or not (false).
   */
  attentionF32ForceAbsent(absent: boolean): void;
  /**
   * Tests and benchmarks: run the selective scan (the scan kernel's and the Mamba mixer's) on its
   * generic loops (true) where native/src/scan.c would run its AVX-512 ones, or not (false).
   */
  scanAvx512ForceAbsent(absent: boolean): void;
  /**
   * Tests and benchmarks: run a Mamba mixer's one-token step (one sequence, no padding mask) on the
   * general path, five passes over the thread pool (true), instead of native/src/mamba.c's
   * three-pass step, or not (false). Both compute the same sums in the same order.
   */
  mambaFusedStepForceAbsent(absent: boolean): void;
  /** Rotate-half rotary of `x` [B, L, heads·headDim] into `y`, angles `cos`/`sin` [B, L, rotDim]. */
  rotary(
    x: Float32Array,
    cos: Float32Array,
    sin: Float32Array,
    y: Float32Array,
    batch: number,
    len: number,
    heads: number,
    headDim: number,
    rotDim: number,
  ): void;
  /**
   * Rotary of head-major `x` [B, heads, len, headDim] (token-major [B, len, heads·headDim] with
   * `tokenMajor` 1) into `y` with tables `cos`/`sin` [tableBatch (1 or B), len, rotDim];
   * `transpose` 1 applies the transposed rotation (the gradient). native/src/backward.h.
   */
  rotaryHeads(
    x: Float32Array,
    cos: Float32Array,
    sin: Float32Array,
    y: Float32Array,
    batch: number,
    heads: number,
    len: number,
    headDim: number,
    rotDim: number,
    tableBatch: number,
    transpose: number,
    tokenMajor: number,
  ): void;
  /**
   * The gradient of {@link attention} for token-major `q` [B, Lq, H·D], `k`, `v` [B, S, Hkv·D]
   * (no cache): `dq`, `dk`, `dv` from `dout` (like q); `dims` = [batch, qLen, kvLen, heads,
   * kvHeads, headDim, causal].
   */
  attentionBackward(
    q: Float32Array,
    k: Float32Array,
    v: Float32Array,
    mask: Float32Array | null,
    dout: Float32Array,
    dq: Float32Array,
    dk: Float32Array,
    dv: Float32Array,
    dims: Int32Array,
    scale: number,
  ): void;
  /**
   * Every gradient of {@link selectiveScan} (native/src/scan-backward.h): from `dy` [B, L, D] and
   * `dh` [B, D, N] (null: zeros) into du, ddelta, dA, dB, dC, dD, dh0, shaped like their inputs.
   */
  selectiveScanBackward(
    u: Float32Array,
    delta: Float32Array,
    A: Float32Array,
    B: Float32Array,
    C: Float32Array,
    D: Float32Array,
    h0: Float32Array | null,
    dy: Float32Array | null,
    dh: Float32Array | null,
    du: Float32Array,
    ddelta: Float32Array,
    dA: Float32Array,
    dB: Float32Array,
    dC: Float32Array,
    dD: Float32Array,
    dh0: Float32Array,
    batch: number,
    len: number,
    dim: number,
    nstate: number,
  ): void;
  /**
   * UnsortedSegmentSum of rows: `out` [segments, inner] = Σ over rows i of `x` with `ids[i]` = s;
   * ids outside [0, segments) dropped. `out` need not be zeroed.
   */
  segmentSum(x: Float32Array, ids: Int32Array, out: Float32Array, inner: number, segments: number): void;
  /** Mamba's causal depthwise conv of `x` [B, L, D] with no cached window: `w` [D, K], `bias` [D]. */
  causalConv(x: Float32Array, w: Float32Array, bias: Float32Array | null, y: Float32Array, batch: number, len: number, dim: number, kernel: number): void;
  /** Its gradients `dx`, `dw`, `dbias` (when given). */
  causalConvBackward(
    x: Float32Array,
    w: Float32Array,
    dy: Float32Array,
    dx: Float32Array,
    dw: Float32Array,
    dbias: Float32Array | null,
    batch: number,
    len: number,
    dim: number,
    kernel: number,
  ): void;
  /** Gradients of `act(x) (* up)`: `dx`, and `dup` when given (needs `up`). */
  activationBackward(act: number, x: Float32Array, up: Float32Array | null, dy: Float32Array, dx: Float32Array, dup: Float32Array | null): void;
  /** Gradients of RMSNorm(x + residual) · weight over rows of `h`: `ds` (of x and residual), `dweight`. */
  rmsNormBackward(
    x: Float32Array,
    residual: Float32Array | null,
    weight: Float32Array | null,
    dy: Float32Array,
    ds: Float32Array,
    dweight: Float32Array | null,
    h: number,
    eps: number,
  ): void;
  /** Gradients of LayerNorm(x + residual) · gamma + beta over rows of `h`: `ds`, `dgamma`, `dbeta`. */
  layerNormBackward(
    x: Float32Array,
    residual: Float32Array | null,
    gamma: Float32Array | null,
    dy: Float32Array,
    ds: Float32Array,
    dgamma: Float32Array | null,
    dbeta: Float32Array | null,
    h: number,
    eps: number,
  ): void;
  /**
   * `out` [B, heads, outCap, headDim] gets per head the first `pastLen` positions of `past`
   * [B, heads, pastCap, headDim] (null: they are already in `out`), then `x` [B, len, heads·headDim].
   */
  kvAppend(
    past: Float32Array | null,
    x: Float32Array,
    out: Float32Array,
    batch: number,
    heads: number,
    pastLen: number,
    len: number,
    headDim: number,
    pastCap: number,
    outCap: number,
  ): void;
  /** `out[i] = act(x[i])`, times `up[i]` when given; `act` indexes {@link FFN_ACTIVATIONS}. */
  ffnActivation(act: number, x: Float32Array, up: Float32Array | null, out: Float32Array): void;
  /** `out [rows, n] = act(x [rows, inF] · wᵀ + bias)`, `w` stored `[n, inF]`. */
  ffnLinear(x: Float32Array, w: Float32Array, bias: Float32Array | null, out: Float32Array, inF: number, n: number, act: number): void;
  /** `out = act(x · wgᵀ + bg) * (x · wuᵀ + bu)`, both weights `[n, inF]`. */
  ffnGatedLinear(
    x: Float32Array,
    wg: Float32Array,
    wu: Float32Array,
    bg: Float32Array | null,
    bu: Float32Array | null,
    out: Float32Array,
    inF: number,
    n: number,
    act: number,
  ): void;
  /**
   * Packed weights (native/src/quant.c), `kind` 0 bfloat16, 1 float16 (both in a Uint16Array),
   * 2 int8 (an Int8Array and one float32 scale per row): `quantPack` fills `data` (and `scales`)
   * from `w` [rows, cols]; `quantUnpack` widens them back into `out`.
   */
  quantPack(kind: number, w: Float32Array, data: Uint16Array | Int8Array, scales: Float32Array | null, rows: number, cols: number): void;
  quantUnpack(kind: number, data: Uint16Array | Int8Array, scales: Float32Array | null, out: Float32Array, rows: number, cols: number): void;
  /** {@link ffnLinear} with `w` packed as `kind` (`scales` for int8). */
  quantLinear(
    x: Float32Array,
    kind: number,
    w: Uint16Array | Int8Array,
    scales: Float32Array | null,
    bias: Float32Array | null,
    out: Float32Array,
    inF: number,
    n: number,
    act: number,
  ): void;
  /**
   * Several linear maps of one `x` [rows, inF]: `outs[j] = x · weights[j]ᵀ + biases[j]`, weight j
   * float32 (`kinds[j]` -1) or packed as `kinds[j]` (int8 with `scales[j]`); its output width is
   * `outs[j].length / rows`. One row of x: one split of all their rows over the threads.
   */
  linearMany(
    x: Float32Array,
    inF: number,
    kinds: Int32Array,
    weights: Array<Float32Array | Uint16Array | Int8Array>,
    scales: Array<Float32Array | null>,
    biases: Array<Float32Array | null>,
    outs: Float32Array[],
  ): void;
  /** {@link ffnGatedLinear} with both weights packed as `kind`. */
  quantGatedLinear(
    x: Float32Array,
    kind: number,
    wg: Uint16Array | Int8Array,
    sg: Float32Array | null,
    wu: Uint16Array | Int8Array,
    su: Float32Array | null,
    bg: Float32Array | null,
    bu: Float32Array | null,
    out: Float32Array,
    inF: number,
    n: number,
    act: number,
  ): void;
  /**
   * {@link mambaMixer} with any of its projections packed: `packed` = [kind, data, scales] for
   * in_proj, out_proj, x_proj and dt_proj in turn (data null: that projection is float32 in
   * `operands`, else its operand is null).
   */
  quantMambaMixer(
    dims: Int32Array,
    operands: Array<Float32Array | null>,
    outputs: Float32Array[],
    eps: number,
    preNormEps: number,
    addResidual: boolean,
    packed: ReadonlyArray<number | Uint16Array | Int8Array | Float32Array | null>,
  ): void;
  /** The packed kernels' vector path ('avx512', 'avx2', 'portable'); with a name, switch to it (tests). */
  quantIsa(name?: string): string;
  /**
   * The thread pool's read-ahead (native/src/parallel.c): between GEMVs its idle workers prefetch
   * the head of the GEMV that followed this one last time. On by default; off for measuring it.
   */
  setReadAhead(on: boolean): void;
  /** How many read-aheads the pool has published (`seq`), and the byte sizes of the last one's regions. */
  readAheadPublished(): { seq: number; bytes: number[] };
  /**
   * Set the precision of the float32 matmul and packed prefill kernels (native/src/gemm-bf16.c);
   * 'bfloat16' throws an Error naming the missing CPU feature where AVX512_BF16 is absent.
   */
  setMatmulPrecision(precision: string): void;
  /** The matmul precision in force: 'float32' (default) or 'bfloat16'. */
  getMatmulPrecision(): 'float32' | 'bfloat16';
  /** Null when the bf16 GEMM can run here, else the CPU/OS feature it lacks. */
  bf16Missing(): string | null;
  /** Tests: act as if the CPU lacked AVX512_BF16 (true; also resets the precision to float32), or not. */
  bf16ForceAbsent(absent: boolean): void;
  /** Whether the bf16 GEMM runs on AMX tiles (Intel AMX-BF16, granted by the OS) rather than vdpbf16ps. */
  amxAvailable(): boolean;
  /** Tests: take the vdpbf16ps path on an AMX machine (true), or use AMX again where present. */
  amxForceAbsent(absent: boolean): void;
  /**
   * {@link NativeAddon.matmul}'s product with both operands rounded to bf16 and float32 sums
   * (`out = op(A_i) @ op(B_i) + bias`, no activation) at any size; throws where AVX512_BF16 is
   * absent. The kernels do not call it (`matmul` takes the bf16 GEMM itself when opted in, above
   * a size): it is the GEMM's own entry point for tests.
   */
  gemmBf16: GemmEntry;
  /**
   * The float32 GEMM that packed weights' prefill runs on (native/src/gemm-f32.c; `quantLinear`
   * and `linearMany` take it themselves for more than a few rows), here over float32 operands:
   * the same operands and result as {@link NativeAddon.gemmBf16}, in float32, at any size. Throws
   * where the CPU lacks AVX-512.
   */
  gemmF32: GemmEntry;
  /** Whether packed weights' prefill runs on the float32 GEMM (AVX-512), else widen-then-sgemm. */
  gemmF32Available(): boolean;
  /** Tests and benchmarks: widen packed weights and use OpenBLAS's sgemm where the float32 GEMM would run (true), or not. */
  gemmF32ForceAbsent(absent: boolean): void;
  /**
   * Adam's update (native/src/train.c) over equal-length arrays, on both cores: `wOut`, `mOut`,
   * `vOut` may be `w`, `m`, `v` themselves (an in-place update). `c1`, `c2` are 1 − βᵗ;
   * `weightDecay` is AdamW's decoupled decay (0 for Adam).
   */
  adam(
    w: Float32Array,
    g: Float32Array,
    m: Float32Array,
    v: Float32Array,
    wOut: Float32Array,
    mOut: Float32Array,
    vOut: Float32Array,
    learningRate: number,
    beta1: number,
    beta2: number,
    epsilon: number,
    c1: number,
    c2: number,
    weightDecay: number,
  ): void;
  /** Per row of `logits` [rows, vocab]: `lse` = logsumexp, `loss` = lse − logit at the target (in [0, vocab)). */
  crossEntropy(logits: Float32Array, targets: Int32Array, loss: Float32Array, lse: Float32Array, vocab: number): void;
  /** `dx` = dy · (softmax − onehot(targets)) per row, from the forward's `lse`. */
  crossEntropyBackward(logits: Float32Array, targets: Int32Array, lse: Float32Array, dy: Float32Array, dx: Float32Array, vocab: number): void;
  /** Per row: `kl` = KL(softmax(teacher/T) ‖ softmax(student/T)) and the two log-sum-exps of the rows / T. */
  klDivergence(student: Float32Array, teacher: Float32Array, kl: Float32Array, lseStudent: Float32Array, lseTeacher: Float32Array, vocab: number, temperature: number): void;
  /** The gradient of Σ dy·kl with respect to the student's (or, `wrtTeacher`, the teacher's) logits into `out`. */
  klDivergenceBackward(
    student: Float32Array,
    teacher: Float32Array,
    lseStudent: Float32Array,
    lseTeacher: Float32Array,
    kl: Float32Array,
    dy: Float32Array,
    out: Float32Array,
    vocab: number,
    temperature: number,
    wrtTeacher: boolean,
  ): void;
  setNumThreads(threads: number): void;
  getNumThreads(): number;
  info(): NativeInfo;
}

/** tfjs fused-op activation names, in the order binding.c numbers them. */
export const ACTIVATIONS = ['linear', 'relu', 'elu', 'relu6', 'prelu', 'leakyrelu', 'sigmoid'] as const;

/** Activations of the ffn kernels, in the order native/src/ffn.h numbers them (the contract's list). */
export const FFN_ACTIVATIONS = FUSED_ACTIVATIONS;

/** Binary operators of `binary`, in the order native/src/kernels.h numbers them. */
export const BINARY_OPS = ['Add', 'Sub', 'Multiply', 'RealDiv', 'SquaredDifference'] as const;

/** Unary operators of `unary`, in the order native/src/kernels.h numbers them. */
export const UNARY_OPS = ['Exp', 'Log', 'Sigmoid', 'Tanh', 'Erf', 'Sqrt', 'Rsqrt', 'Square', 'Neg', 'Softplus'] as const;

/** Where `npm run build:native` puts the addon (the same relative path from src/ and dist/). */
export const ADDON_PATH = fileURLToPath(
  new URL('../../../native/build/Release/tessera_native.node', import.meta.url),
);

const BUILD_HINT =
  "install OpenBLAS (sudo bash scripts/install-native-deps.sh) and run 'npm run build:native'";

let loaded: NativeAddon | undefined;

/** True when the compiled addon exists (it may still fail to load, e.g. without libopenblas). */
export function isNativeBuilt(path: string = ADDON_PATH): boolean {
  return existsSync(path);
}

/**
 * Load the compiled addon once, pick OpenBLAS' kernel set and thread count, and return it.
 * Throws an error naming the missing file and the fix when the addon was not built.
 */
export function loadAddon(path: string = ADDON_PATH): NativeAddon {
  if (!isNativeBuilt(path)) {
    throw new Error(`native backend is not built: ${path} is missing; ${BUILD_HINT}`);
  }
  if (loaded !== undefined) return loaded;
  defaultOpenBlasCore();
  defaultOpenBlasThreadTimeout();
  let addon: NativeAddon;
  try {
    addon = createRequire(import.meta.url)(path) as NativeAddon;
  } catch (err) {
    throw new Error(
      `native backend failed to load ${path}: ${(err as Error).message.split('\n')[0]}; ${BUILD_HINT}`,
    );
  }
  addon.setNumThreads(threadsFromEnv());
  loaded = addon;
  return addon;
}

/** `TESSERA_NUM_THREADS`, else every core: the JS side is single-threaded, so BLAS may use all. */
function threadsFromEnv(): number {
  const raw = process.env.TESSERA_NUM_THREADS;
  if (raw === undefined || raw.trim() === '') return availableParallelism();
  const threads = Number(raw);
  if (!Number.isInteger(threads) || threads < 1) {
    throw new Error(`TESSERA_NUM_THREADS must be a positive integer, got '${raw}'`);
  }
  return threads;
}

/** What {@link defaultOpenBlasThreadTimeout} sets: OpenBLAS's threads spin 2^16 cycles (tens of µs) before sleeping. */
export const OPENBLAS_THREAD_TIMEOUT = '16';

/**
 * OpenBLAS's threads spin for 2^28 cycles (about 0.1 s) after each GEMM before they sleep, and
 * with one thread per core that spinning takes the cores from the kernels that follow (attention,
 * norms, our own thread pool): BERT's attention ran at half speed right after its projections.
 * When the user has not chosen (`OPENBLAS_THREAD_TIMEOUT` unset), spin briefly: long enough for
 * back-to-back GEMMs, short enough to hand the cores over. Read when the library loads.
 */
function defaultOpenBlasThreadTimeout(): void {
  if (process.env.OPENBLAS_THREAD_TIMEOUT === undefined) process.env.OPENBLAS_THREAD_TIMEOUT = OPENBLAS_THREAD_TIMEOUT;
}

/**
 * OpenBLAS 0.3.21 (Debian 12) does not recognise recent CPUs (e.g. Xeon model 207) and falls back
 * to its generic `Prescott` kernels, 4-6x slower than AVX2/AVX-512 ones. When the user has not
 * chosen (`OPENBLAS_CORETYPE` unset), name the best kernel set the CPU's flags allow. OpenBLAS
 * reads the variable once, when the library loads, i.e. on the require() that follows.
 */
function defaultOpenBlasCore(): void {
  if (process.env.OPENBLAS_CORETYPE !== undefined || process.platform !== 'linux') return;
  let flags: Set<string>;
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8').match(/^flags\s*:(.*)$/m);
    flags = new Set((line?.[1] ?? '').trim().split(/\s+/));
  } catch {
    return;
  }
  if (['avx512f', 'avx512bw', 'avx512dq', 'avx512vl'].every((f) => flags.has(f))) {
    process.env.OPENBLAS_CORETYPE = 'SkylakeX';
  } else if (flags.has('avx2') && flags.has('fma')) {
    process.env.OPENBLAS_CORETYPE = 'Haswell';
  }
}
