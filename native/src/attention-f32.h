/*
 * Float32 register tiles for a prefill's attention (AVX-512): the two products of one block of up
 * to TESSERA_ATTENTION_ROWS query rows against one head's keys and values. A head's products are
 * 128-512 on a side, where a BLAS call spends much of its time packing operands it then uses once
 * or twice; these read K once transposed per head (tessera_attention_pack_keys) and V in place.
 */
#ifndef TESSERA_ATTENTION_F32_H
#define TESSERA_ATTENTION_F32_H

#include <stddef.h>

/* Query rows per block of the tiles below. */
#define TESSERA_ATTENTION_ROWS 8

/* Whether the tiles run on this CPU (AVX-512F and BW), unless tests forced them absent. */
int tessera_attention_f32_available(void);
/* Tests and benchmarks: take the BLAS path where the tiles would run (absent != 0), or not. */
void tessera_attention_f32_force_absent(int absent);

/* Columns of a packed key block for S keys: S rounded up to 32, plus 16 so that the rows of a
 * long head do not all fall in the same cache sets. */
size_t tessera_attention_keys_ld(int keys);

/* kt [D, ldt] = Kᵀ for the S keys K[j * ldk + p]; columns S..ldt hold 0. kt is 64-byte aligned. */
void tessera_attention_pack_keys(const float *k, size_t ldk, int keys, int head_dim, float *kt, size_t ldt);

/*
 * s[i * lds + j] = q[i * ldq + ·] · kt[·, j] for rows i < rows (<= TESSERA_ATTENTION_ROWS) and
 * keys j < n rounded up to 32 (kt from tessera_attention_pack_keys, lds >= that). head_dim a
 * multiple of 16.
 */
void tessera_attention_scores(const float *q, size_t ldq, int rows, const float *kt, size_t ldt, int head_dim, int n,
                              float *s, size_t lds);

/*
 * o[i * ldo + c] = Σ_{j<n} p[i * ldp + j] · v[j * ldv + c] for rows i < rows
 * (<= TESSERA_ATTENTION_ROWS) and c < head_dim (a multiple of 16).
 */
void tessera_attention_context(const float *p, size_t ldp, int rows, int n, const float *v, size_t ldv, int head_dim,
                               float *o, size_t ldo);

#endif
