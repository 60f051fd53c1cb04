/*
 * A persistent pool of worker threads for tessera_parallel_for. Starting a thread per call costs
 * tens to hundreds of microseconds on small VMs, more than a decode step's GEMV over one layer
 * takes, so such kernels would stay on one core; the pool's workers are started once and woken
 * per call.
 *
 * Waking: a call publishes a new `ticket` (a call number and its part count). Idle workers first spin on it for a short while (decode and
 * training call kernels back to back, so most calls find their workers awake), yielding the core
 * to any other runnable thread (OpenBLAS's own workers share these cores), then sleep on a
 * condition variable.
 *
 * One call at a time uses the pool: a call from inside a part, or while another thread's call
 * holds it, runs its parts on the calling thread instead. The split is the same either way, so
 * results do not depend on which threads ran the parts.
 */
#include "parallel.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>

#define MAX_THREADS 64
/*
 * Polls of `ticket` before an idle worker sleeps (each a pause and a yield: ~0.1 ms in all): short,
 * so that a spinning worker does not hold a core OpenBLAS's threads want.
 */
#define SPIN_POLLS 200

extern int openblas_get_num_threads(void);

int tessera_threads(void) { return openblas_get_num_threads(); }

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER; /* held by the call using the pool */
static pthread_mutex_t sleep_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake_up = PTHREAD_COND_INITIALIZER;
static int workers_started; /* workers 1..workers_started exist; changed under pool_lock */
/*
 * (call number << 8) | parts of the latest call. A worker decides from the ticket alone whether
 * it has a part: one that has none never reads `job`, which the next call may be rewriting; one
 * that has a part is waited for, so `job` stays as published until it is done.
 */
static atomic_ulong ticket;
static atomic_int sleepers;
static atomic_int parts_left; /* parts the workers have not finished in the current call */

/* The current call: written under pool_lock before its ticket is published (release). */
static struct {
  tessera_range_fn fn;
  void *ctx;
  size_t n, parts;
} job;

static _Thread_local int inside_part;

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

static void run_part(size_t part) {
  const size_t begin = job.n * part / job.parts, end = job.n * (part + 1) / job.parts;
  inside_part = 1;
  job.fn(job.ctx, begin, end);
  inside_part = 0;
}

/* The ticket current when each worker was started (before the call that started it published its own). */
static unsigned long start_ticket[MAX_THREADS];

static void *worker(void *arg) {
  const size_t id = (size_t)(uintptr_t)arg;
  unsigned long seen = start_ticket[id];
  for (;;) {
    unsigned long now = atomic_load_explicit(&ticket, memory_order_acquire);
    for (int polls = 0; now == seen && polls < SPIN_POLLS; polls++) {
      cpu_relax();
      sched_yield();
      now = atomic_load_explicit(&ticket, memory_order_acquire);
    }
    if (now == seen) {
      pthread_mutex_lock(&sleep_lock);
      atomic_fetch_add(&sleepers, 1);
      while ((now = atomic_load(&ticket)) == seen) pthread_cond_wait(&wake_up, &sleep_lock);
      atomic_fetch_sub(&sleepers, 1);
      pthread_mutex_unlock(&sleep_lock);
    }
    seen = now;
    if (id < (now & 0xff)) {
      run_part(id);
      atomic_fetch_sub_explicit(&parts_left, 1, memory_order_release);
    }
  }
  return NULL;
}

/* Start workers up to `wanted` (1..wanted-1 besides the caller); returns how many parts can run at once. */
static size_t ensure_workers(size_t wanted) {
  while ((size_t)workers_started + 1 < wanted && workers_started + 1 < MAX_THREADS) {
    pthread_t id;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    start_ticket[workers_started + 1] = atomic_load(&ticket);
    const int failed = pthread_create(&id, &attr, worker, (void *)(uintptr_t)(workers_started + 1));
    pthread_attr_destroy(&attr);
    if (failed) break;
    workers_started++;
  }
  return (size_t)workers_started + 1;
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
  if (inside_part || pthread_mutex_trylock(&pool_lock) != 0) {
    for (size_t i = 0; i < parts; i++) fn(ctx, n * i / parts, n * (i + 1) / parts);
    return;
  }
  const size_t running = ensure_workers(parts);
  const size_t by_workers = (running < parts ? running : parts) - 1;
  job.fn = fn;
  job.ctx = ctx;
  job.n = n;
  job.parts = parts;
  atomic_store_explicit(&parts_left, (int)by_workers, memory_order_relaxed);
  /* Workers 1..by_workers take their part; the others see the call and stay idle. */
  const unsigned long call = (atomic_load_explicit(&ticket, memory_order_relaxed) >> 8) + 1;
  atomic_store_explicit(&ticket, (call << 8) | (by_workers + 1), memory_order_seq_cst);
  if (atomic_load(&sleepers) > 0) {
    pthread_mutex_lock(&sleep_lock);
    pthread_cond_broadcast(&wake_up);
    pthread_mutex_unlock(&sleep_lock);
  }
  run_part(0);
  /* Parts no worker could take (thread creation failed) run here. */
  for (size_t i = by_workers + 1; i < parts; i++) run_part(i);
  while (atomic_load_explicit(&parts_left, memory_order_acquire) > 0) cpu_relax();
  pthread_mutex_unlock(&pool_lock);
}
