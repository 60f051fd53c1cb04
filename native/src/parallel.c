#include "parallel.h"

#include <pthread.h>

#define MAX_THREADS 64

extern int openblas_get_num_threads(void);

int tessera_threads(void) { return openblas_get_num_threads(); }

struct part {
  tessera_range_fn fn;
  void *ctx;
  size_t begin, end;
};

static void *run_part(void *arg) {
  const struct part *p = arg;
  p->fn(p->ctx, p->begin, p->end);
  return NULL;
}

void tessera_parallel_for(size_t n, size_t grain, int threads, tessera_range_fn fn, void *ctx) {
  if (grain < 1) grain = 1;
  size_t parts = n / grain;
  if (parts > (size_t)threads) parts = (size_t)threads;
  if (parts > MAX_THREADS) parts = MAX_THREADS;
  if (parts <= 1) {
    if (n > 0) fn(ctx, 0, n);
    return;
  }
  struct part p[MAX_THREADS];
  pthread_t ids[MAX_THREADS];
  int started[MAX_THREADS] = {0};
  for (size_t i = 0; i < parts; i++) p[i] = (struct part){fn, ctx, n * i / parts, n * (i + 1) / parts};
  for (size_t i = 1; i < parts; i++) started[i] = pthread_create(&ids[i], NULL, run_part, &p[i]) == 0;
  run_part(&p[0]);
  for (size_t i = 1; i < parts; i++) {
    if (started[i]) {
      pthread_join(ids[i], NULL);
    } else {
      run_part(&p[i]); /* no thread to be had: run that part here */
    }
  }
}
