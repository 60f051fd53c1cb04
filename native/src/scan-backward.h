/*
 * The selective scan's backward pass (scan-backward.c): the gradient kernel of the scan in
 * scan.c, for training. Plain C over float32 buffers; binding.c validates sizes.
 */
#ifndef TESSERA_SCAN_BACKWARD_H
#define TESSERA_SCAN_BACKWARD_H

#include <stddef.h>

/* Shapes: u, delta, dy, du, ddelta [B, L, D]; A, dA [D, N]; Bm, Cm, dB, dC [B, L, N]; D, dD [D];
 * h0, dh, dh0 [B, D, N]. h0, dy and dh may be NULL (zeros). */
struct tessera_scan_backward {
  const float *u, *delta, *A, *Bm, *Cm, *D, *h0, *dy, *dh;
  float *du, *ddelta, *dA, *dB, *dC, *dD, *dh0;
  int batch, len, dim, nstate;
};

/* Every gradient of the scan, on up to `threads` threads. Returns 0 when out of memory. */
int tessera_selective_scan_backward(const struct tessera_scan_backward *s, int threads);

#endif
