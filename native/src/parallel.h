/*
 * A parallel for over an index range, run on a persistent pool of worker threads (parallel.c),
 * for elementwise and per-row kernels large enough to repay waking a worker (a few microseconds).
 */
#ifndef TESSERA_PARALLEL_H
#define TESSERA_PARALLEL_H

#include <stddef.h>

/*
 * fn(ctx, begin, end) over [0, n) split into contiguous parts. The calling thread runs parts too
 * (any of them: parts go to whichever thread claims them first), so a part must not depend on
 * which thread runs it; the boundaries depend only on n and the part count.
 */
typedef void (*tessera_range_fn)(void *ctx, size_t begin, size_t end);

/*
 * Run fn over [0, n) on up to `threads` threads, each part at least `grain` indices (so small
 * ranges stay on the calling thread). Parts must be independent.
 */
void tessera_parallel_for(size_t n, size_t grain, int threads, tessera_range_fn fn, void *ctx);

/* Memory a call reads: [start, start + bytes). */
struct tessera_region {
  const void *start;
  size_t bytes;
};
#define TESSERA_REGIONS_MAX 8

/*
 * tessera_parallel_for for a call that streams `reads` (count <= TESSERA_REGIONS_MAX, the first
 * one identifying the call): between calls the pool's idle workers prefetch what the call that
 * followed this one last time read.
 */
void tessera_parallel_stream(size_t n, size_t grain, int threads, tessera_range_fn fn, void *ctx,
                             const struct tessera_region *reads, int count);

/* Reading ahead on (the default) or off, process-wide: for measuring it. */
void tessera_pool_set_read_ahead(int on);

/*
 * The read-ahead published last: the byte sizes of its regions (up to TESSERA_REGIONS_MAX) into
 * `bytes`, how many published so far into `seq`; returns the region count. For tests.
 */
int tessera_pool_read_ahead_published(size_t *bytes, unsigned *seq);

/*
 * Call before a BLAS call from the calling thread: the pool's idle workers stop polling for work
 * and sleep, so they do not take cores from OpenBLAS's threads (their polling yields the core,
 * but the scheduler still gives them a share of it).
 */
void tessera_pool_rest(void);

/* The thread count kernels use: what OpenBLAS is set to (setNumThreads / TESSERA_NUM_THREADS). */
int tessera_threads(void);

#endif
