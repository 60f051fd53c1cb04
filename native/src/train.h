/*
 * Training kernels (train.c): Adam's update, and the forward and backward passes of the
 * cross-entropy and the temperature-softened KL divergence over logits rows. Like kernels.h, plain
 * C over float32 buffers; the N-API glue (train-binding.c) validates sizes before calling.
 */
#ifndef TESSERA_TRAIN_H
#define TESSERA_TRAIN_H

#include <stddef.h>
#include <stdint.h>

/* One Adam step's constants; c1, c2 are the bias corrections 1 - beta^t, wd AdamW's decay (0: Adam). */
struct tessera_adam {
  float lr, beta1, beta2, eps, c1, c2, wd;
};

/*
 * m' = b1 m + (1 - b1) g, v' = b2 v + (1 - b2) g^2,
 * w' = w (1 - lr wd) - lr (m'/c1) / (sqrt(v'/c2) + eps), over n values.
 * Each output may be its own input (w_out == w etc.): every element is read before it is written.
 */
void tessera_adam(const float *w, const float *g, const float *m, const float *v, float *w_out,
                  float *m_out, float *v_out, size_t n, const struct tessera_adam *p);

/* Per row of logits [rows, vocab]: lse[r] = logsumexp(row), loss[r] = lse[r] - row[targets[r]]. */
void tessera_cross_entropy(const float *logits, const int32_t *targets, float *loss, float *lse,
                           size_t rows, int vocab);

/* dx[r, j] = dy[r] (softmax(row)[j] - [j == targets[r]]), from the forward's lse. */
void tessera_cross_entropy_backward(const float *logits, const int32_t *targets, const float *lse,
                                    const float *dy, float *dx, size_t rows, int vocab);

/*
 * Per row of student and teacher logits [rows, vocab] at temperature 1/inv_t:
 * kl[r] = sum_j p_t (log p_t - log p_s), with p = softmax(row * inv_t); lse_s, lse_t are the
 * log-sum-exps of the scaled rows, kept for the backward pass.
 */
void tessera_kl_divergence(const float *student, const float *teacher, float *kl, float *lse_s,
                           float *lse_t, size_t rows, int vocab, float inv_t);

/*
 * The KL's gradient times dy[r], with respect to the student logits (wrt_teacher = 0):
 * dy inv_t (p_s - p_t); or to the teacher logits (wrt_teacher = 1): dy inv_t p_t (log p_t - log p_s - kl).
 */
void tessera_kl_divergence_backward(const float *student, const float *teacher, const float *lse_s,
                                    const float *lse_t, const float *kl, const float *dy, float *out,
                                    size_t rows, int vocab, float inv_t, int wrt_teacher);

#endif
