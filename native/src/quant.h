/*
 * Linear layers over weights held in 16 or 8 bits (quant.c): bfloat16, IEEE float16, and int8
 * with one float32 scale per output row. Products and sums are float32; only the weight is
 * stored narrow, so decode (which reads every weight once per token) reads 2x or 4x fewer bytes.
 * Weights keep PyTorch's [n, in] layout. binding.c's glue (quant-binding.c) checks sizes.
 */
#ifndef TESSERA_QUANT_H
#define TESSERA_QUANT_H

#include <stddef.h>
#include <stdint.h>

/* Storage formats, numbered as QUANT_KINDS in src/kernels/native/quant.ts lists them. */
enum tessera_quant_kind {
  TESSERA_QUANT_BF16 = 0, /* uint16: the top half of the float32, rounded to nearest even */
  TESSERA_QUANT_F16 = 1,  /* uint16: IEEE binary16, rounded to nearest even */
  TESSERA_QUANT_INT8 = 2, /* int8 q with w = q * scale[row], scale = max|w_row| / 127 */
  TESSERA_QUANT_COUNT = 3,
};

/* Bytes per stored weight of `kind`. */
size_t tessera_quant_size(int kind);

/* Pack w [rows, cols] float32 into data (rows*cols values of the kind); int8 also fills scales [rows]. */
void tessera_quant_pack(int kind, const float *w, size_t rows, size_t cols, void *data, float *scales);

/* The float32 values of a packed weight into out [rows, cols]. */
void tessera_quant_unpack(int kind, const void *data, const float *scales, size_t rows, size_t cols,
                          float *out);

/*
 * out [rows, n] = act(x [rows, in] . w^T + bias), w packed [n, in]; bias may be NULL, scales is
 * int8's (else NULL). act numbers as ffn.h's. Returns 0 when a scratch buffer cannot be allocated.
 */
int tessera_quant_linear(const float *x, int rows, int in, int kind, const void *w,
                         const float *scales, const float *bias, float *out, int n, int act);

/* out = act(x . wg^T + bg) * (x . wu^T + bu), both packed as `kind`. Returns 0 on allocation failure. */
int tessera_quant_gated_linear(const float *x, int rows, int in, int kind, const void *wg,
                               const float *sg, const void *wu, const float *su, const float *bg,
                               const float *bu, float *out, int n, int act);

/*
 * out [n] = x [in] . w^T + bias for a float32 w [n, in]; bias may be NULL, or bias_len 1 (one value
 * for every output) or n. Decode's GEMV over float32 weights, on the kernels' thread pool, where
 * OpenBLAS's sgemv would wake its own threads beside the pool's on the same cores.
 */
void tessera_gemv_f32(const float *x, int in, const float *w, const float *bias, size_t bias_len, float *out, int n);

/* Which vector path the kernels run: "avx512", "avx2" or "portable" (the best this CPU has). */
/*
 * One linear map of x for tessera_linear_many: `out [rows, n] = x . w^T + bias`, w float32
 * (kind -1) or packed as `kind` (int8 with its row scales).
 */
struct tessera_linear_map {
  int kind;
  const void *w;
  const float *scales;
  const float *bias;
  float *out;
  int n;
};

#define TESSERA_LINEAR_MANY_MAX 8

/*
 * Several linear maps of one x (an attention layer's query, key and value projections) in one
 * call: with one row of x their GEMVs are one split over all their output rows, so the pool is
 * woken once, and each output equals its own linear call's bit for bit. Other row counts run the
 * maps one after another. Returns 0 when out of memory or given more than TESSERA_LINEAR_MANY_MAX.
 */
int tessera_linear_many(const float *x, int rows, int in, const struct tessera_linear_map *maps, int count);

/*
 * Rows [begin, end) of one map for one row of x (`out[r] = x . w_r + bias_r`), on the calling
 * thread: a part of a pool task that splits a GEMV together with work of its own.
 */
void tessera_linear_rows(const float *x, int in, const struct tessera_linear_map *map, size_t begin, size_t end);

/* Bytes a row of the map's weight takes for `in` inputs (float32, or its packed kind). */
size_t tessera_linear_row_bytes(const struct tessera_linear_map *map, int in);

const char *tessera_quant_isa(void);

/* Run `name`'s path from now on (tests check each path on one machine); 0 if the CPU lacks it. */
int tessera_quant_use_isa(const char *name);

#endif
