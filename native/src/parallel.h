/*
 * A minimal parallel for over an index range, for elementwise and per-row kernels large enough to
 * repay starting threads (~tens of microseconds each).
 */
#ifndef TESSERA_PARALLEL_H
#define TESSERA_PARALLEL_H

#include <stddef.h>

/* fn(ctx, begin, end) over [0, n) split into contiguous parts: the calling thread runs the first. */
typedef void (*tessera_range_fn)(void *ctx, size_t begin, size_t end);

/*
 * Run fn over [0, n) on up to `threads` threads, each part at least `grain` indices (so small
 * ranges stay on the calling thread). Parts must be independent.
 */
void tessera_parallel_for(size_t n, size_t grain, int threads, tessera_range_fn fn, void *ctx);

/* The thread count kernels use: what OpenBLAS is set to (setNumThreads / TESSERA_NUM_THREADS). */
int tessera_threads(void);

#endif
