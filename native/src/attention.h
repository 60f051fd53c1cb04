/*
 * Fused attention kernels: scaled dot-product attention straight from the projections' token-major
 * layout or a head-major KV cache, rotary embeddings, and the KV cache append. Plain C over
 * float32 buffers; binding.c validates sizes before calling these.
 */
#ifndef TESSERA_ATTENTION_H
#define TESSERA_ATTENTION_H

#include <stddef.h>

/* Where an operand keeps head h of batch row b (see tessera_attention). */
enum tessera_attention_layout {
  /* [B, L, heads * headDim]: as a projection returns it. */
  TESSERA_TOKEN_MAJOR = 0,
  /* [B, heads, L, headDim]: as the KV cache stores it. */
  TESSERA_HEAD_MAJOR = 1,
};

struct tessera_attention_dims {
  int batch;
  int q_len;    /* Lq: this call's queries */
  int kv_len;   /* S: keys (cached + new) */
  int heads;    /* H query heads */
  int kv_heads; /* Hkv; query head h reads kv head h / (H / Hkv) */
  int head_dim;
  int k_layout, v_layout; /* tessera_attention_layout each; q is token-major */
  int causal;             /* query i sits at position S - Lq + i and sees keys up to it */
  float scale;
  /* Positions per (batch, head) block of a head-major k or v: >= S when a cache holds spare room
   * (its first S positions are the keys); 0 means S. */
  int kv_capacity;
};

/*
 * out [B, Lq, H * headDim] = softmax(q kᵀ * scale + bias) v per (batch, head), where bias is -1e9
 * for a key that is padding (mask[b, j] == 0; mask may be NULL) or, when causal, in the query's
 * future, as the op-by-op path adds it (a row with every key masked comes out uniform). Pairs of
 * (batch, head) are split across up to `threads` threads.
 */
void tessera_attention(const float *q, const float *k, const float *v, const float *mask,
                       float *out, const struct tessera_attention_dims *dims, int threads);

/*
 * The gradient of tessera_attention for token-major q, k, v (both layouts TESSERA_TOKEN_MAJOR, as
 * training calls it, with no cache): dq, dk, dv (shaped like q, k, v) from dout (like q). Tasks
 * are (batch, kv head) pairs, on up to `threads` threads.
 */
void tessera_attention_backward(const float *q, const float *k, const float *v, const float *mask,
                                const float *dout, float *dq, float *dk, float *dv,
                                const struct tessera_attention_dims *dims, int threads);

/*
 * Rotate-half rotary embedding of x [B, L, heads * headDim] into y (same shape): in each head the
 * first `rot_dim` values form pairs (i, i + rot_dim/2) rotated by the angles in cos/sin
 * [B, L, rot_dim]; the rest pass through.
 */
void tessera_rotary(const float *x, const float *cos_t, const float *sin_t, float *y, int batch,
                    int len, int heads, int head_dim, int rot_dim);

/*
 * The KV cache append without a transpose and a concat: out [B, H, out_cap, D] gets, per (b, h),
 * the S0 = past_len cached rows of past [B, H, past_cap, D] at positions 0.., then x [B, L, H * D]
 * at positions S0..S0 + L - 1 (out_cap >= S0 + L). past NULL: the cached rows are already in out
 * (an append in place, O(L)), or there are none. Long copies run on up to `threads` threads.
 */
void tessera_kv_append(const float *past, int past_cap, const float *x, float *out, int out_cap,
                       int batch, int heads, int past_len, int len, int head_dim, int threads);

#endif
