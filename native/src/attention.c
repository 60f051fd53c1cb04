#include "attention.h"
#include "attention-f32.h"
#include "gemm-bf16.h"
#include "parallel.h"
#include "simd.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* OpenBLAS extensions (see binding.c). */
extern void openblas_set_num_threads(int num_threads);
extern int openblas_get_num_threads(void);

/* The op-by-op path's additive bias for a masked key (src/ops/attention.ts). */
#define MASKED (-1e9f)
/* Query heads per kv head up to which decode uses one GEMV per head (see rows_times). */
#define SMALL_GROUP 4
/* Query rows per block of a causal task (see attention_tasks). */
#define CAUSAL_BLOCK 64

struct attention_args {
  const float *q, *k, *v, *mask;
  float *out;
  const struct tessera_attention_dims *d;
  int bf16; /* bf16 compute on AMX (attention_head_bf16) for rows > 1 */
  int tiles; /* float32 register tiles (attention_head_tiles) for rows > 1 */
};

/* With one query per head (decoding), all query heads sharing a kv head form one matrix. */
static int grouped(const struct tessera_attention_dims *d) { return d->q_len == 1; }

static int task_count(const struct tessera_attention_dims *d) {
  return d->batch * (grouped(d) ? d->kv_heads : d->heads);
}

/*
 * C [rows, n] = A [rows, k] · op(M), M being [n, k] under CblasTrans and [k, n] otherwise. A few
 * rows (a GQA group) go as one GEMV each: OpenBLAS packs the whole M for a GEMM, which for
 * rows <= SMALL_GROUP costs more than reading it once per row (~1.4x here).
 */
static void rows_times(CBLAS_TRANSPOSE op, int rows, int n, int k, const float *A, int lda,
                       const float *M, int ldm, float *C, int ldc) {
  if (rows > SMALL_GROUP) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, op, rows, n, k, 1.0f, A, lda, M, ldm, 0.0f, C, ldc);
    return;
  }
  const int m_rows = op == CblasTrans ? n : k, m_cols = op == CblasTrans ? k : n;
  const CBLAS_TRANSPOSE row_op = op == CblasTrans ? CblasNoTrans : CblasTrans;
  for (int r = 0; r < rows; r++) {
    cblas_sgemv(CblasRowMajor, row_op, m_rows, m_cols, 1.0f, M, ldm, A + (size_t)r * lda, 1, 0.0f,
                C + (size_t)r * ldc, 1);
  }
}

/*
 * One row of scores in place: scale, add the bias of masked keys (keys at or past `visible`, and
 * padding), then a max-subtracted softmax, with the float operations of the op-by-op path's
 * Multiply, Add and Softmax kernels in three passes: the bias and the max, the exponentials and
 * their sum, the division.
 */
TESSERA_CLONES static void softmax_row(float *x, int n, float scale, const float *mask_row, int visible) {
  float mx = -INFINITY;
  if (mask_row != NULL) {
#pragma omp simd reduction(max : mx)
    for (int j = 0; j < n; j++) {
      const float s = x[j] * scale;
      const float b = (j >= visible || mask_row[j] == 0.0f) ? s + MASKED : s;
      x[j] = b;
      mx = b > mx ? b : mx;
    }
  } else {
#pragma omp simd reduction(max : mx)
    for (int j = 0; j < n; j++) {
      const float s = x[j] * scale;
      const float b = j >= visible ? s + MASKED : s;
      x[j] = b;
      mx = b > mx ? b : mx;
    }
  }
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (int j = 0; j < n; j++) {
    const float e = tessera_expf(x[j] - mx);
    x[j] = e;
    sum += e;
  }
  const float inv = 1.0f / sum;
  for (int j = 0; j < n; j++) x[j] *= inv;
}

/* Keys query row r sees: those up to its position S - Lq + r, or every key without causality. */
static int visible_keys(const struct tessera_attention_dims *d, int r) {
  return d->causal ? d->kv_len - d->q_len + r + 1 : d->kv_len;
}

/*
 * Keys a block of query rows [r0, r1) is scored against: those up to its last row when causal
 * (later keys are masked, their probability exactly 0), unless a row of it may see only padding
 * (first_real, the first unpadded key, past its first row): such a row is uniform over all keys.
 */
static int block_keys(const struct tessera_attention_dims *d, int first_real, int r0, int r1) {
  const int offset = d->kv_len - d->q_len;
  return d->causal && first_real <= offset + r0 ? offset + r1 : d->kv_len;
}

static int round32(int x) { return (x + 31) / 32 * 32; }

/* Per-thread buffers of the bf16 path (attention_head_bf16): sized for one head. */
struct bf16_scratch {
  uint16_t *q, *p;   /* packed rows of the queries and of a block's probabilities */
  uint32_t *k, *v;   /* K as panels of 32 keys, V as panels of 32 of its columns */
  float *scores, *o; /* a block's scores and its output */
};

static int bf16_scratch_alloc(struct bf16_scratch *w, const struct tessera_attention_dims *d) {
  const size_t d32 = (size_t)round32(d->head_dim), s32 = (size_t)round32(d->kv_len), l32 = (size_t)round32(d->q_len);
  w->q = aligned_alloc(64, l32 * (d32 + 32) * 2);
  w->p = aligned_alloc(64, 32 * (s32 + 32) * 2);
  w->k = aligned_alloc(64, s32 * d32 * 2);
  w->v = aligned_alloc(64, s32 * d32 * 2);
  w->scores = aligned_alloc(64, 32 * s32 * 4);
  w->o = aligned_alloc(64, 32 * d32 * 4);
  return w->q != NULL && w->p != NULL && w->k != NULL && w->v != NULL && w->scores != NULL && w->o != NULL;
}

static void bf16_scratch_free(struct bf16_scratch *w) {
  free(w->q);
  free(w->p);
  free(w->k);
  free(w->v);
  free(w->scores);
  free(w->o);
}

/*
 * One (batch, head) task of a prefill with bf16 compute on AMX tiles (setMatmulPrecision
 * ('bfloat16') where tessera_amx_available()): Q, K and V are rounded to bf16 once per head, each
 * block of 32 queries gets its scores from tile products over the keys up to its last row (as the
 * float32 path's causal blocks), the same softmax in float32, and its output from the
 * probabilities rounded to bf16 times V.
 */
static void attention_head_bf16(const struct tessera_attention_dims *d, const float *Q, int ldq, const float *K,
                                int ldk, const float *V, int ldv, float *O, const float *mask_row, int first_real,
                                struct bf16_scratch *w) {
  const int D = d->head_dim, S = d->kv_len, Lq = d->q_len;
  const int d32 = round32(D), s32 = round32(S), l32 = round32(Lq);
  const size_t q_ld = (size_t)d32 + 32, p_ld = (size_t)s32 + 32; /* +32: rows 16 apart off one cache set */
  tessera_amx_pack_rows(Q, (size_t)ldq, Lq, D, w->q, q_ld);
  memset(w->q + (size_t)Lq * q_ld, 0, (size_t)(l32 - Lq) * q_ld * 2);
  tessera_amx_pack_panels(K, 1, (size_t)ldk, D, S, w->k); /* B(p, j) = K[j][p]: keys are columns */
  tessera_amx_pack_panels(V, (size_t)ldv, 1, S, D, w->v); /* B(p, j) = V[p][j] */
  for (int r0 = 0; r0 < Lq; r0 += 32) {
    const int r1 = r0 + 32 < Lq ? r0 + 32 : Lq;
    const int n = block_keys(d, first_real, r0, r1);
    tessera_amx_multiply(w->q + (size_t)r0 * q_ld, q_ld, w->k, round32(n) / 32, D, D, w->scores, (size_t)s32);
    for (int r = r0; r < r1; r++) softmax_row(w->scores + (size_t)(r - r0) * s32, n, d->scale, mask_row, visible_keys(d, r));
    tessera_amx_pack_rows(w->scores, (size_t)s32, r1 - r0, n, w->p, p_ld);
    memset(w->p + (size_t)(r1 - r0) * p_ld, 0, (size_t)(32 - (r1 - r0)) * p_ld * 2);
    tessera_amx_multiply(w->p, p_ld, w->v, d32 / 32, S, n, w->o, (size_t)d32);
    for (int r = r0; r < r1; r++) memcpy(O + (size_t)r * ldq, w->o + (size_t)(r - r0) * d32, sizeof(float) * D);
  }
}

/* Per-thread buffers of the float32 tiles' path (attention_head_tiles). */
struct tiles_scratch {
  float *kt;            /* the head's keys transposed, [headDim, ldt] */
  float *scores;        /* a block's scores, [TESSERA_ATTENTION_ROWS, ldt] */
  size_t ldt;
  const float *packed;  /* the K whose keys kt holds: query heads of one kv head share them */
};

static int tiles_scratch_alloc(struct tiles_scratch *w, const struct tessera_attention_dims *d) {
  w->ldt = tessera_attention_keys_ld(d->kv_len);
  w->kt = aligned_alloc(64, sizeof(float) * w->ldt * (size_t)d->head_dim);
  w->scores = aligned_alloc(64, sizeof(float) * w->ldt * TESSERA_ATTENTION_ROWS);
  w->packed = NULL;
  return w->kt != NULL && w->scores != NULL;
}

/*
 * One (batch, head) task of a float32 prefill on register tiles: blocks of TESSERA_ATTENTION_ROWS
 * queries, each scored against the keys up to its last row (as the BLAS path's causal blocks),
 * with the same softmax, then multiplied by V read in place.
 */
static void attention_head_tiles(const struct tessera_attention_dims *d, const float *Q, int ldq, const float *K,
                                 int ldk, const float *V, int ldv, float *O, const float *mask_row, int first_real,
                                 struct tiles_scratch *w) {
  const int D = d->head_dim, Lq = d->q_len;
  if (w->packed != K) {
    tessera_attention_pack_keys(K, (size_t)ldk, d->kv_len, D, w->kt, w->ldt);
    w->packed = K;
  }
  for (int r0 = 0; r0 < Lq; r0 += TESSERA_ATTENTION_ROWS) {
    const int r1 = r0 + TESSERA_ATTENTION_ROWS < Lq ? r0 + TESSERA_ATTENTION_ROWS : Lq;
    const int n = block_keys(d, first_real, r0, r1);
    tessera_attention_scores(Q + (size_t)r0 * ldq, (size_t)ldq, r1 - r0, w->kt, w->ldt, D, n, w->scores, w->ldt);
    for (int r = r0; r < r1; r++) softmax_row(w->scores + (size_t)(r - r0) * w->ldt, n, d->scale, mask_row, visible_keys(d, r));
    tessera_attention_context(w->scores, w->ldt, r1 - r0, n, V, (size_t)ldv, D, O + (size_t)r0 * ldq, (size_t)ldq);
  }
}

/*
 * A task is one (batch, query head) pair, or when decoding one (batch, kv head) pair whose
 * query heads are the rows. Every operand is read in place through BLAS leading dimensions.
 */
static void attention_tasks(void *ctx, size_t first, size_t last) {
  const struct attention_args *a = ctx;
  const struct tessera_attention_dims *d = a->d;
  const int H = d->heads, Hkv = d->kv_heads, D = d->head_dim, S = d->kv_len, Lq = d->q_len;
  const int groups = H / Hkv;
  const int per_batch = grouped(d) ? Hkv : H;
  const int rows = grouped(d) ? groups : Lq;
  struct bf16_scratch w = {0};
  struct tiles_scratch tw = {0};
  const int bf16 = !grouped(d) && a->bf16;
  const int tiles = !grouped(d) && !bf16 && a->tiles;
  float *scores = bf16 || tiles ? NULL : malloc(sizeof(float) * (size_t)rows * S);
  if (bf16) {
    if (!bf16_scratch_alloc(&w, d)) abort();
    tessera_amx_begin();
  } else if (tiles) {
    if (!tiles_scratch_alloc(&tw, d)) abort();
  } else if (scores == NULL) {
    abort();
  }
  const int ldq = grouped(d) ? D : H * D;
  const int ldk = d->k_layout == TESSERA_TOKEN_MAJOR ? Hkv * D : D;
  const int ldv = d->v_layout == TESSERA_TOKEN_MAJOR ? Hkv * D : D;
  /* Positions per head block of a head-major operand: a cache may hold room past its S keys. */
  const size_t cap = d->kv_capacity > S ? (size_t)d->kv_capacity : (size_t)S;
  for (int task = (int)first; task < (int)last; task++) {
    const int b = task / per_batch, t = task % per_batch;
    const int kvh = grouped(d) ? t : t / groups;
    const int h0 = grouped(d) ? t * groups : t; /* first query head of the task */
    const float *Q = a->q + (size_t)b * Lq * H * D + (size_t)h0 * D;
    float *O = a->out + (size_t)b * Lq * H * D + (size_t)h0 * D;
    const float *K = d->k_layout == TESSERA_TOKEN_MAJOR ? a->k + (size_t)b * S * Hkv * D + (size_t)kvh * D
                                                        : a->k + ((size_t)b * Hkv + kvh) * cap * D;
    const float *V = d->v_layout == TESSERA_TOKEN_MAJOR ? a->v + (size_t)b * S * Hkv * D + (size_t)kvh * D
                                                        : a->v + ((size_t)b * Hkv + kvh) * cap * D;
    const float *mask_row = a->mask == NULL ? NULL : a->mask + (size_t)b * S;
    if (grouped(d)) {
      /* One query per head, at the last position: it sees every key but padding. The group's
       * query rows are D apart (ldq = D). */
      rows_times(CblasTrans, rows, S, D, Q, ldq, K, ldk, scores, S);
      for (int r = 0; r < rows; r++) softmax_row(scores + (size_t)r * S, S, d->scale, mask_row, S);
      rows_times(CblasNoTrans, rows, D, S, scores, S, V, ldv, O, ldq);
      continue;
    }
    /* Causal rows go in blocks, each over the keys up to its last row only: the keys after it are
     * masked, and where every row of the block sees some unmasked key their probability is exactly
     * 0 (exp underflows). A row with every key masked is uniform over all S keys, so a block that
     * may hold one (left padding reaching past its first row) takes every key. */
    int first_real = 0;
    if (mask_row != NULL) while (first_real < S && mask_row[first_real] == 0.0f) first_real++;
    if (bf16) {
      attention_head_bf16(d, Q, ldq, K, ldk, V, ldv, O, mask_row, first_real, &w);
      continue;
    }
    if (tiles) {
      attention_head_tiles(d, Q, ldq, K, ldk, V, ldv, O, mask_row, first_real, &tw);
      continue;
    }
    const int block = d->causal ? CAUSAL_BLOCK : rows;
    for (int r0 = 0; r0 < rows; r0 += block) {
      const int r1 = r0 + block < rows ? r0 + block : rows;
      const int n = block_keys(d, first_real, r0, r1);
      float *P = scores + (size_t)r0 * S;
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, r1 - r0, n, D, 1.0f, Q + (size_t)r0 * ldq,
                  ldq, K, ldk, 0.0f, P, S);
      for (int r = r0; r < r1; r++) softmax_row(scores + (size_t)r * S, n, d->scale, mask_row, visible_keys(d, r));
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, r1 - r0, D, n, 1.0f, P, S, V, ldv, 0.0f,
                  O + (size_t)r0 * ldq, ldq);
    }
  }
  if (bf16) {
    tessera_amx_end();
    bf16_scratch_free(&w);
  }
  free(tw.kt);
  free(tw.scores);
  free(scores);
}

void tessera_attention(const float *q, const float *k, const float *v, const float *mask,
                       float *out, const struct tessera_attention_dims *d, int threads) {
  const int tasks = task_count(d);
  if (tasks == 0 || d->q_len == 0) return;
  struct attention_args args = {q, k, v, mask, out, d, tessera_matmul_precision() && tessera_amx_available(),
                                tessera_attention_f32_available() && d->head_dim % 16 == 0};
  /* Below ~1M multiply-adds a thread start costs more than it saves (one decode step over a
   * short cache stays on this thread). */
  const double work = (double)d->batch * d->heads * d->q_len * d->kv_len * d->head_dim;
  /* Each BLAS call runs single-threaded: either our threads already fill the cores (no fanning
   * out again), or the work is too small to repay waking OpenBLAS's (a decode step's GEMVs). */
  const int blas_threads = openblas_get_num_threads();
  openblas_set_num_threads(1);
  if (work < 1048576.0 || threads <= 1 || tasks == 1) {
    attention_tasks(&args, 0, (size_t)tasks);
  } else {
    tessera_parallel_for((size_t)tasks, 1, threads, attention_tasks, &args);
  }
  openblas_set_num_threads(blas_threads);
}

TESSERA_CLONES void tessera_rotary(const float *x, const float *cos_t, const float *sin_t, float *y,
                                   int batch, int len, int heads, int head_dim, int rot_dim) {
  const int half = rot_dim / 2;
  for (size_t bl = 0; bl < (size_t)batch * len; bl++) {
    const float *c = cos_t + bl * rot_dim, *s = sin_t + bl * rot_dim;
    for (int h = 0; h < heads; h++) {
      const size_t at = (bl * heads + h) * head_dim;
      const float *xh = x + at;
      float *yh = y + at;
      /* rotate_half(x) = [-x2, x1]; out = x * cos + rotate_half(x) * sin. */
      for (int i = 0; i < half; i++) yh[i] = xh[i] * c[i] + (-xh[i + half]) * s[i];
      for (int i = half; i < rot_dim; i++) yh[i] = xh[i] * c[i] + xh[i - half] * s[i];
      for (int i = rot_dim; i < head_dim; i++) yh[i] = xh[i];
    }
  }
}

struct kv_append_args {
  const float *past, *x;
  float *out;
  int heads, past_len, past_cap, len, out_cap, head_dim;
};

/* (batch, head) pairs [first, last): that head's cached rows (unless already in `out`), then this
 * call's, at positions past_len.. of a head block of out_cap positions. */
static void kv_append_pairs(void *ctx, size_t first, size_t last) {
  const struct kv_append_args *a = ctx;
  const int D = a->head_dim;
  const size_t row = sizeof(float) * (size_t)D;
  for (size_t pair = first; pair < last; pair++) {
    const size_t b = pair / (size_t)a->heads, h = pair % (size_t)a->heads;
    float *dst = a->out + pair * a->out_cap * D;
    if (a->past != NULL && a->past_len > 0) memcpy(dst, a->past + pair * a->past_cap * D, row * a->past_len);
    dst += (size_t)a->past_len * D;
    for (int l = 0; l < a->len; l++) {
      memcpy(dst + (size_t)l * D, a->x + ((b * a->len + l) * a->heads + h) * D, row);
    }
  }
}

void tessera_kv_append(const float *past, int past_cap, const float *x, float *out, int out_cap,
                       int batch, int heads, int past_len, int len, int head_dim, int threads) {
  struct kv_append_args args = {past, x, out, heads, past_len, past_cap, len, out_cap, head_dim};
  /* A copy of the cached rows is worth both cores' bandwidth when long: from ~256 KB per pair (a
   * task costs microseconds). Appending in place moves only the new rows: one thread. */
  const size_t copied = past == NULL ? (size_t)len : (size_t)(past_len + len);
  const size_t pair_bytes = sizeof(float) * copied * head_dim * 2;
  const size_t grain = pair_bytes >= ((size_t)256 << 10) ? 1 : (size_t)batch * heads;
  tessera_parallel_for((size_t)batch * heads, grain, threads, kv_append_pairs, &args);
}

struct attention_backward_args {
  const float *q, *k, *v, *mask, *dout;
  float *dq, *dk, *dv;
  const struct tessera_attention_dims *d;
};

/*
 * A task is one (batch, kv head) pair: its query heads one after another, so the task alone adds
 * into its slice of dk and dv. Per query head, with P = softmax(scale·Q Kᵀ + bias) recomputed:
 *   dV += Pᵀ dO,  dP = dO Vᵀ,  dS = scale · P ⊙ (dP − rowsum(dP ⊙ P)),  dQ = dS K,  dK += dSᵀ Q.
 * Masked keys have P = 0, so they get no gradient, as in the op-by-op path.
 */
static void attention_backward_tasks(void *ctx, size_t first, size_t last) {
  const struct attention_backward_args *a = ctx;
  const struct tessera_attention_dims *d = a->d;
  const int H = d->heads, Hkv = d->kv_heads, D = d->head_dim, S = d->kv_len, Lq = d->q_len;
  const int groups = H / Hkv, ldq = H * D, ldk = Hkv * D;
  float *P = malloc(sizeof(float) * 2 * (size_t)Lq * S);
  if (P == NULL) abort();
  float *dP = P + (size_t)Lq * S;
  for (size_t task = first; task < last; task++) {
    const size_t b = task / Hkv, kvh = task % Hkv;
    const size_t kv_at = b * S * ldk + kvh * D;
    const float *K = a->k + kv_at, *V = a->v + kv_at;
    float *dK = a->dk + kv_at, *dV = a->dv + kv_at;
    for (int s = 0; s < S; s++) {
      memset(dK + (size_t)s * ldk, 0, sizeof(float) * D);
      memset(dV + (size_t)s * ldk, 0, sizeof(float) * D);
    }
    const float *mask_row = a->mask == NULL ? NULL : a->mask + b * S;
    for (int g = 0; g < groups; g++) {
      const size_t q_at = b * Lq * ldq + (kvh * groups + g) * D;
      const float *Q = a->q + q_at, *dO = a->dout + q_at;
      float *dQ = a->dq + q_at;
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Lq, S, D, 1.0f, Q, ldq, K, ldk, 0.0f, P, S);
      for (int r = 0; r < Lq; r++) softmax_row(P + (size_t)r * S, S, d->scale, mask_row, visible_keys(d, r));
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, S, D, Lq, 1.0f, P, S, dO, ldq, 1.0f, dV, ldk);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Lq, S, D, 1.0f, dO, ldq, V, ldk, 0.0f, dP, S);
      for (int r = 0; r < Lq; r++) {
        const float *pr = P + (size_t)r * S;
        float *dr = dP + (size_t)r * S;
        double dot = 0.0;
        for (int j = 0; j < S; j++) dot += (double)dr[j] * pr[j];
        const float dotf = (float)dot;
        for (int j = 0; j < S; j++) dr[j] = d->scale * pr[j] * (dr[j] - dotf);
      }
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Lq, D, S, 1.0f, dP, S, K, ldk, 0.0f, dQ, ldq);
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, S, D, Lq, 1.0f, dP, S, Q, ldq, 1.0f, dK, ldk);
    }
  }
  free(P);
}

void tessera_attention_backward(const float *q, const float *k, const float *v, const float *mask,
                                const float *dout, float *dq, float *dk, float *dv,
                                const struct tessera_attention_dims *d, int threads) {
  const int tasks = d->batch * d->kv_heads;
  if (tasks == 0 || d->q_len == 0) return;
  struct attention_backward_args args = {q, k, v, mask, dout, dq, dk, dv, d};
  if (threads <= 1 || tasks == 1) {
    attention_backward_tasks(&args, 0, (size_t)tasks);
    return;
  }
  /* As tessera_attention: single-threaded BLAS inside our threads. */
  const int blas_threads = openblas_get_num_threads();
  openblas_set_num_threads(1);
  tessera_parallel_for((size_t)tasks, 1, threads, attention_backward_tasks, &args);
  openblas_set_num_threads(blas_threads);
}
