/*
 * The whole Mamba mixer in one native call, for a prompt (L tokens) or one decode step (L = 1).
 * The math is src/layers/mamba.ts's, in the same order and with the same names:
 *   [x, z] = in_proj(h);  u = SiLU(conv1d(x));  [dt, B, C] = x_proj(u);
 *   delta = softplus(dt_proj(dt));  y = scan(u, delta, A, B, C, D);  out = out_proj(y * SiLU(z)).
 * Doing it in one call matters for decode: op by op, a token is ~45 tfjs kernels per layer, each
 * with ~20 us of dispatch, which costs more than reading the layer's weights.
 */
#include "kernels.h"
#include "parallel.h"
#include "quant.h"
#include "simd.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>

/*
 * Causal depthwise conv + SiLU, one decode step of one batch row: the window (the K cached
 * inputs, [E, K]) shifts by one to take this step's x; u = SiLU(cb + sum_k w_k window'_k).
 */
TESSERA_CLONES static void conv_step(const float *x, int inner, int kernel, const float *weight, const float *bias,
                                     const float *window, float *u, float *new_window) {
  if (kernel == 4) {
    /* Mamba's usual width, written out so the loop vectorises across channels (the general loop
     * below does not: its taps are an inner loop of unknown length). Same sums in the same order. */
#pragma omp simd
    for (int e = 0; e < inner; e++) {
      const float t1 = window[4 * e + 1], t2 = window[4 * e + 2], t3 = window[4 * e + 3], xe = x[e];
      float acc = bias != NULL ? bias[e] : 0.0f;
      acc += weight[4 * e] * t1;
      acc += weight[4 * e + 1] * t2;
      acc += weight[4 * e + 2] * t3;
      acc += weight[4 * e + 3] * xe;
      new_window[4 * e] = t1;
      new_window[4 * e + 1] = t2;
      new_window[4 * e + 2] = t3;
      new_window[4 * e + 3] = xe;
      u[e] = tessera_siluf(acc);
    }
    return;
  }
  /* Each channel's K taps in one pass. */
  for (int e = 0; e < inner; e++) {
    const float *w = weight + (size_t)e * kernel, *win = window + (size_t)e * kernel;
    float *next = new_window + (size_t)e * kernel;
    float acc = bias != NULL ? bias[e] : 0.0f;
    for (int k = 0; k + 1 < kernel; k++) {
      acc += w[k] * win[k + 1];
      next[k] = win[k + 1];
    }
    acc += w[kernel - 1] * x[e];
    next[kernel - 1] = x[e];
    u[e] = acc;
  }
  for (int e = 0; e < inner; e++) u[e] = tessera_siluf(u[e]);
}

/*
 * The conv of a prompt (or of a padded step, which keeps its window) for one batch row. The
 * sequence is the K cached inputs (window, [E, K]) followed by this call's x (rows of xz, 2E
 * apart); u_t = SiLU(cb + sum_k w_k seq_{t+k+1}), and the new window is the sequence's last K
 * entries. taps is the weight transposed to [K, E], so each tap's multiply-add runs over
 * contiguous channels; the threads split the channels.
 */
struct conv_prompt {
  const float *xz;
  int len, inner, kernel;
  const float *taps, *bias, *window;
  float *u, *new_window;
  int keep_window;
};

/* Step t of a conv_prompt over channels [e0, e1). */
TESSERA_INLINE void conv_prompt_row(const struct conv_prompt *c, int t, int e0, int e1) {
  const int inner = c->inner, kernel = c->kernel;
  const size_t stride = 2 * (size_t)inner;
  float *ut = c->u + (size_t)t * inner;
  for (int e = e0; e < e1; e++) ut[e] = c->bias != NULL ? c->bias[e] : 0.0f;
  for (int k = 0; k < kernel; k++) {
    const int j = t + k + 1 - kernel; /* index into this call's x; < 0 reads the window */
    const float *tap = c->taps + (size_t)k * inner;
    if (j >= 0) {
      const float *xj = c->xz + (size_t)j * stride;
      for (int e = e0; e < e1; e++) ut[e] += tap[e] * xj[e];
    } else {
      for (int e = e0; e < e1; e++) ut[e] += tap[e] * c->window[(size_t)e * kernel + kernel + j];
    }
  }
  for (int e = e0; e < e1; e++) ut[e] = tessera_siluf(ut[e]);
}

/* Channels [first, last) of a conv_prompt. */
TESSERA_CLONES static void conv_prompt_part(void *ctx, size_t first, size_t last) {
  const struct conv_prompt *c = ctx;
  const int len = c->len, inner = c->inner, kernel = c->kernel, e0 = (int)first, e1 = (int)last;
  const size_t stride = 2 * (size_t)inner;
  int t = 0;
  if (kernel == 4) {
    /* Mamba's usual width: once the window is behind (t >= 3), a step's bias, four taps and SiLU
     * in one vectorised pass over the channels instead of six; the sums in conv_prompt_row's order. */
    const float *restrict w0 = c->taps, *restrict w1 = w0 + inner, *restrict w2 = w1 + inner, *restrict w3 = w2 + inner;
    const float *restrict bias = c->bias;
    for (; t < len && t < 3; t++) conv_prompt_row(c, t, e0, e1);
    for (; t < len; t++) {
      float *restrict ut = c->u + (size_t)t * inner;
      const float *restrict x0 = c->xz + (size_t)(t - 3) * stride, *restrict x1 = x0 + stride,
                            *restrict x2 = x1 + stride, *restrict x3 = x2 + stride;
#pragma omp simd
      for (int e = e0; e < e1; e++) {
        float acc = bias != NULL ? bias[e] : 0.0f;
        acc += w0[e] * x0[e];
        acc += w1[e] * x1[e];
        acc += w2[e] * x2[e];
        acc += w3[e] * x3[e];
        ut[e] = tessera_siluf(acc);
      }
    }
  }
  for (; t < len; t++) conv_prompt_row(c, t, e0, e1);
  for (int e = e0; e < e1; e++) {
    for (int k = 0; k < kernel; k++) {
      const int j = len - kernel + k;
      c->new_window[(size_t)e * kernel + k] = c->keep_window ? c->window[(size_t)e * kernel + k]
                                              : j >= 0        ? c->xz[(size_t)j * stride + e]
                                                              : c->window[(size_t)e * kernel + kernel + j];
    }
  }
}

/*
 * delta = keep * softplus(delta) in place, row by row. PyTorch's softplus (beta 1; above its
 * threshold 20 it returns x, which this equals in float32) as max(x, 0) + log(1 + e^-|x|), so
 * nothing overflows; where e^-|x| is below float32's epsilon the log rounds to 0 instead of e^x,
 * an absolute error under 1e-7. Two passes, exp then log, written without selects: GCC does not
 * vectorise the two composed in one loop, nor a select after the log.
 */
TESSERA_CLONES static void softplus_rows(float *delta, const float *keep, int first, int last, int inner) {
  float y[256];
  for (int r = first; r < last; r++) {
    const float k = keep != NULL ? keep[r] : 1.0f;
    for (int e0 = 0; e0 < inner; e0 += 256) {
      float *restrict d = delta + (size_t)r * inner + e0;
      const int count = inner - e0 < 256 ? inner - e0 : 256;
      for (int e = 0; e < count; e++) y[e] = tessera_expf(-fabsf(d[e]));
      for (int e = 0; e < count; e++) d[e] = k * (0.5f * (d[e] + fabsf(d[e])) + tessera_logf(1.0f + y[e]));
    }
  }
}

struct softplus_job {
  float *delta;
  const float *keep;
  int inner;
};

static void softplus_part(void *ctx, size_t first, size_t last) {
  const struct softplus_job *j = ctx;
  softplus_rows(j->delta, j->keep, (int)first, (int)last, j->inner);
}

/* Jamba's RMSNorms on one row of x_proj's output, in place: dt [R], then B and C [N]. */
static void inner_norms(const struct tessera_mamba *m, float *row) {
  tessera_rms_norm(row, NULL, m->dt_norm, row, 1, m->rank, m->norm_eps);
  tessera_rms_norm(row + m->rank, NULL, m->b_norm, row + m->rank, 1, m->nstate, m->norm_eps);
  tessera_rms_norm(row + m->rank + m->nstate, NULL, m->c_norm, row + m->rank + m->nstate, 1, m->nstate, m->norm_eps);
}

/* A projection as a linear map into out [., n]: w float32, or (when packed is not NULL) packed. */
static struct tessera_linear_map projection(const float *w, const void *packed, int kind, const float *scales,
                                            const float *bias, float *out, int n) {
  return (struct tessera_linear_map){packed != NULL ? kind : -1, packed != NULL ? packed : (const void *)w, scales,
                                     bias, out, n};
}

/* out [rows, n] = x [rows, k] . w^T + bias, w float32 or (when packed is not NULL) packed. */
static int project(const float *x, const float *w, const void *packed, int kind, const float *scales,
                   const float *bias, float *out, int rows, int n, int k) {
  const struct tessera_linear_map map = projection(w, packed, kind, scales, bias, out, n);
  return tessera_linear_many(x, rows, k, &map, 1);
}

/*
 * One decode step of one sequence: the same math in three passes over the pool instead of five
 * passes and two single-threaded loops. A channel's conv needs only its own rows of in_proj, and
 * its delta, softplus, scan and gate only its own row of dt_proj, so those run in the part that
 * computed the rows, while they are in cache; only x_proj and out_proj, which read every channel,
 * wait for all parts. Same sums in the same order as the general path.
 */
struct step_job {
  const struct tessera_mamba *m;
  const float *x, *window;
  float *xz, *u, *new_window;
  struct tessera_linear_map in, dt;
  const float *dt_x;
  const struct tessera_scan *scan;
};

/* Channels [e0, e1): their rows of in_proj (x and z), then the conv step. */
static void step_in_conv_part(void *ctx, size_t e0, size_t e1) {
  const struct step_job *j = ctx;
  const struct tessera_mamba *m = j->m;
  const size_t inner = (size_t)m->inner, kernel = (size_t)m->kernel;
  tessera_linear_rows(j->x, m->hidden, &j->in, e0, e1);
  tessera_linear_rows(j->x, m->hidden, &j->in, inner + e0, inner + e1);
  conv_step(j->xz + e0, (int)(e1 - e0), m->kernel, m->conv_weight + e0 * kernel,
            m->conv_bias != NULL ? m->conv_bias + e0 : NULL, j->window + e0 * kernel, j->u + e0,
            j->new_window + e0 * kernel);
}

/* Channels [e0, e1): their rows of dt_proj, softplus, then their scan step and gate. */
static void step_dt_scan_part(void *ctx, size_t e0, size_t e1) {
  const struct step_job *j = ctx;
  tessera_linear_rows(j->dt_x, j->m->rank, &j->dt, e0, e1);
  softplus_rows(j->dt.out + e0, NULL, 0, 1, (int)(e1 - e0));
  tessera_scan_step_part(j->scan, e0, e1);
}

static int fused_step_off;

void tessera_mamba_fused_step_force_absent(int absent) { fused_step_off = absent; }

static const char *mixer_step(const struct tessera_mamba *m, const float *hidden, const float *conv_in,
                              const float *ssm_in, float *out, float *conv_out, float *ssm_out, int threads) {
  const int inner = m->inner, n_state = m->nstate, rank = m->rank, kernel = m->kernel;
  const int xdbl_width = rank + 2 * n_state;
  /* xz, u, x_proj's output, delta, gated, the normed row and a zero window, in one block. */
  const size_t floats = 2 * (size_t)inner + (size_t)inner + (size_t)xdbl_width + 2 * (size_t)inner +
                        (size_t)m->hidden + (conv_in == NULL ? (size_t)inner * kernel : 0);
  float *block = malloc(sizeof(float) * floats);
  if (block == NULL) return "out of memory";
  float *xz = block, *u = xz + 2 * (size_t)inner, *xdbl = u + inner, *delta = xdbl + xdbl_width,
        *gated = delta + inner, *normed = gated + inner, *zeros = normed + m->hidden;
  if (conv_in == NULL) memset(zeros, 0, sizeof(float) * (size_t)inner * kernel);
  const float *x = hidden;
  if (m->pre_norm != NULL) {
    tessera_rms_norm(hidden, NULL, m->pre_norm, normed, 1, m->hidden, m->pre_norm_eps);
    x = normed;
  }
  const struct tessera_scan scan = {1, 1, inner, n_state, u, delta, m->A, xdbl + rank,
                                    xdbl + rank + n_state, xdbl_width, m->D, xz + inner, 2 * inner,
                                    ssm_in, gated, ssm_out};
  struct step_job job = {
      m, x, conv_in != NULL ? conv_in : zeros, xz, u, conv_out,
      projection(m->in_weight, m->in_packed, m->in_kind, m->in_scales, m->in_bias, xz, 2 * inner),
      projection(m->dt_weight, m->dt_packed, m->dt_kind, m->dt_scales, m->dt_bias, delta, inner),
      xdbl, &scan};
  /* About as many weights a part as tessera_linear_many's GEMVs take. */
  const struct tessera_region in_reads = {job.in.w, 2 * (size_t)inner * tessera_linear_row_bytes(&job.in, m->hidden)};
  tessera_parallel_stream((size_t)inner, 1 + ((size_t)16 << 10) / (2 * (size_t)m->hidden), threads,
                          step_in_conv_part, &job, &in_reads, 1);
  const char *error = NULL;
  if (!project(u, m->x_weight, m->x_packed, m->x_kind, m->x_scales, NULL, xdbl, 1, xdbl_width, inner)) {
    error = "out of memory";
    goto done;
  }
  if (m->dt_norm != NULL) inner_norms(m, xdbl);
  const struct tessera_region dt_reads = {job.dt.w, (size_t)inner * tessera_linear_row_bytes(&job.dt, rank)};
  /* The scan step's grain (scan.c): a part pays off from a few hundred channels. */
  tessera_parallel_stream((size_t)inner, 512, threads, step_dt_scan_part, &job, &dt_reads, 1);
  if (!project(gated, m->out_weight, m->out_packed, m->out_kind, m->out_scales, m->out_bias, out, 1, m->hidden,
               inner)) {
    error = "out of memory";
    goto done;
  }
  if (m->add_residual) {
    for (int i = 0; i < m->hidden; i++) out[i] += hidden[i];
  }
done:
  free(block);
  return error;
}

const char *tessera_mamba_mixer(const struct tessera_mamba *m, const float *hidden,
                                const float *keep, const float *conv_in, const float *ssm_in,
                                float *out, float *conv_out, float *ssm_out, int threads) {
  const int batch = m->batch, len = m->len, inner = m->inner, n_state = m->nstate,
            rank = m->rank, kernel = m->kernel;
  const int rows = batch * len, xdbl_width = rank + 2 * n_state;
  if (rows == 1 && keep == NULL && !fused_step_off) {
    const char *error = tessera_scan_state_error(n_state);
    return error != NULL ? error : mixer_step(m, hidden, conv_in, ssm_in, out, conv_out, ssm_out, threads);
  }
  float *xz = malloc(sizeof(float) * (size_t)rows * 2 * inner);
  float *u = malloc(sizeof(float) * (size_t)rows * inner);
  float *xdbl = malloc(sizeof(float) * (size_t)rows * xdbl_width);
  float *delta = malloc(sizeof(float) * (size_t)rows * inner);
  /* The scan reads u, delta and z as it goes, so its gated output has its own buffer. */
  float *gated = malloc(sizeof(float) * (size_t)rows * inner);
  float *zeros = conv_in == NULL ? calloc((size_t)inner * kernel, sizeof(float)) : NULL;
  /* The conv's taps as [K, E], for conv_prompt only (a decode step reads the weight as stored). */
  const int prompt_conv = len > 1 || keep != NULL;
  float *taps = prompt_conv ? malloc(sizeof(float) * (size_t)inner * kernel + 1) : NULL;
  float *normed = m->pre_norm != NULL ? malloc(sizeof(float) * (size_t)rows * m->hidden) : NULL;
  /* A packed dt_proj reads its rows of x_proj's output contiguous; one row already is. */
  float *dt_rows = m->dt_packed != NULL && rows > 1 ? malloc(sizeof(float) * (size_t)rows * rank) : NULL;
  const char *error = NULL;
  if (xz == NULL || u == NULL || xdbl == NULL || delta == NULL || gated == NULL || (prompt_conv && taps == NULL) ||
      (conv_in == NULL && zeros == NULL) || (m->pre_norm != NULL && normed == NULL) ||
      (m->dt_packed != NULL && rows > 1 && dt_rows == NULL)) {
    error = "out of memory";
    goto done;
  }

  if (normed != NULL) tessera_rms_norm_split(hidden, NULL, m->pre_norm, normed, rows, m->hidden, m->pre_norm_eps);
  if (!project(normed != NULL ? normed : hidden, m->in_weight, m->in_packed, m->in_kind, m->in_scales, m->in_bias,
               xz, rows, 2 * inner, m->hidden)) {
    error = "out of memory";
    goto done;
  }
  if (keep != NULL) {
    /* Padding must not reach the state: its conv input is zeroed (and its delta, below). */
    for (int r = 0; r < rows; r++) {
      for (int e = 0; e < inner; e++) xz[(size_t)r * 2 * inner + e] *= keep[r];
    }
  }
  if (prompt_conv) {
    for (int e = 0; e < inner; e++) {
      for (int k = 0; k < kernel; k++) taps[(size_t)k * inner + e] = m->conv_weight[(size_t)e * kernel + k];
    }
  }
  for (int b = 0; b < batch; b++) {
    const float *window = conv_in != NULL ? conv_in + (size_t)b * inner * kernel : zeros;
    const float *x = xz + (size_t)b * len * 2 * inner;
    float *u_b = u + (size_t)b * len * inner, *window_out = conv_out + (size_t)b * inner * kernel;
    /* A padded single step keeps its window (a longer call pads only on the left). */
    const int keep_window = len == 1 && keep != NULL && keep[b] == 0.0f;
    if (len == 1 && !keep_window) {
      conv_step(x, inner, kernel, m->conv_weight, m->conv_bias, window, u_b, window_out);
    } else {
      const struct conv_prompt c = {x, len, inner, kernel, taps, m->conv_bias, window, u_b, window_out, keep_window};
      /* About 64K multiply-adds a part, as the scan splits its state updates. */
      tessera_parallel_for((size_t)inner, 1 + ((size_t)64 << 10) / ((size_t)len * kernel), threads, conv_prompt_part,
                           (void *)&c);
    }
  }

  if (!project(u, m->x_weight, m->x_packed, m->x_kind, m->x_scales, NULL, xdbl, rows, xdbl_width, inner)) {
    error = "out of memory";
    goto done;
  }
  if (m->dt_norm != NULL) {
    /* Jamba: RMSNorms on dt, B and C (in place). */
    for (int r = 0; r < rows; r++) inner_norms(m, xdbl + (size_t)r * xdbl_width);
  }
  if (m->dt_packed == NULL) {
    tessera_linear(xdbl, xdbl_width, m->dt_weight, m->dt_bias, delta, rows, inner, rank);
  } else {
    const float *dt = xdbl;
    if (dt_rows != NULL) {
      for (int r = 0; r < rows; r++) memcpy(dt_rows + (size_t)r * rank, xdbl + (size_t)r * xdbl_width, sizeof(float) * rank);
      dt = dt_rows;
    }
    if (!project(dt, NULL, m->dt_packed, m->dt_kind, m->dt_scales, m->dt_bias, delta, rows, inner, rank)) {
      error = "out of memory";
      goto done;
    }
  }
  /* About 64K values a part: a prompt's rows split across the threads, a decode step's stays on this one. */
  const struct softplus_job softplus = {delta, keep, inner};
  tessera_parallel_for((size_t)rows, 1 + ((size_t)64 << 10) / (size_t)inner, threads, softplus_part, (void *)&softplus);

  const struct tessera_scan scan = {batch, len, inner, n_state, u, delta, m->A, xdbl + rank,
                                    xdbl + rank + n_state, xdbl_width, m->D, xz + inner, 2 * inner,
                                    ssm_in, gated, ssm_out};
  error = tessera_scan_run(&scan, threads);
  if (error == NULL) {
    if (!project(gated, m->out_weight, m->out_packed, m->out_kind, m->out_scales, m->out_bias, out, rows,
                 m->hidden, inner))
      error = "out of memory";
    if (error == NULL && m->add_residual) {
      for (size_t i = 0; i < (size_t)rows * m->hidden; i++) out[i] += hidden[i];
    }
  }
done:
  free(xz), free(u), free(xdbl), free(delta), free(gated), free(zeros), free(taps), free(normed), free(dt_rows);
  return error;
}
