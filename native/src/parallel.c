/*
 * A persistent pool of worker threads for tessera_parallel_for. Starting a thread per call costs
 * tens to hundreds of microseconds on small VMs, more than a decode step's GEMV over one layer
 * takes, so such kernels would stay on one core; the pool's workers are started once and woken
 * per call.
 *
 * Parts are claimed, not assigned: a call publishes its number and part count in `claim`, and the
 * caller and the workers take the next unclaimed part with a compare-and-swap until none is left.
 * On a machine shared with other processes (or with OpenBLAS's own spinning threads) a worker may
 * not get a core for milliseconds; the caller then runs its part itself instead of waiting for it.
 * The part boundaries depend only on n and the part count, never on who runs a part, so results
 * are one thread's bit for bit.
 *
 * Waking: idle workers first spin on `claim` for a millisecond (decode and training call kernels
 * back to back, so most calls find them awake), yielding the core to any other runnable thread,
 * then sleep on a condition variable. The caller waiting for parts still running also yields.
 *
 * Between calls, idle workers also prefetch what the next call will likely read (see "Reading
 * ahead" below).
 *
 * One call at a time uses the pool: a call from inside a part, or while another thread's call
 * holds it, runs its parts on the calling thread instead.
 */
/* clock_gettime and CLOCK_MONOTONIC under -std=c11. */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif
#include "parallel.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#define MAX_THREADS 64
/*
 * How long an idle worker polls `claim` (a pause and a yield each time) before it sleeps. Decode
 * calls a kernel every few tens of microseconds with JS in between; a worker that slept through
 * such a gap joins the next call late, and on virtual machines the GEMVs ran up to 1.5x slower per
 * call after gaps the workers slept through. The yield leaves the core to any runnable thread
 * (OpenBLAS's among them), so the spin costs only otherwise idle time.
 */
#define SPIN_NS 1000000L

static long monotonic_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (long)t.tv_sec * 1000000000L + t.tv_nsec;
}

extern int openblas_get_num_threads(void);

int tessera_threads(void) { return openblas_get_num_threads(); }

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER; /* held by the call using the pool */
static pthread_mutex_t sleep_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake_up = PTHREAD_COND_INITIALIZER;
static atomic_int workers_started; /* workers 1..workers_started exist; changed under pool_lock */
/*
 * (call number << 16) | (parts << 8) | next unclaimed part, of the latest call. Claiming a part
 * is a compare-and-swap on the whole word, so a worker that wakes late cannot take a part of a
 * call other than the one it read, and one that claimed a part is waited for: `job` stays as
 * published until every part of its call is done.
 */
static atomic_ulong claim;
/* Bumped by tessera_pool_rest: a polling worker that sees it change goes to sleep at once. */
static atomic_uint rest_requests;
static atomic_int sleepers;
static atomic_int parts_done; /* parts of the current call finished */

/* The current call: written under pool_lock before its claim word is published (release). */
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

/* Runs unclaimed parts of call `call` until none is left (or a later call has replaced it). */
static void claim_parts(unsigned long call) {
  unsigned long seen = atomic_load_explicit(&claim, memory_order_acquire);
  while ((seen >> 16) == call && (seen & 0xff) < ((seen >> 8) & 0xff)) {
    /* The acquire pairs with the caller's release of `claim`, so `job` is the call's. */
    if (atomic_compare_exchange_weak_explicit(&claim, &seen, seen + 1, memory_order_acq_rel, memory_order_acquire)) {
      run_part(seen & 0xff);
      atomic_fetch_add_explicit(&parts_done, 1, memory_order_release);
      seen = atomic_load_explicit(&claim, memory_order_acquire);
    }
  }
}

/*
 * Reading ahead. Decode runs the same GEMVs in the same order every token, with JS between them,
 * during which memory sits idle. A streaming call (tessera_parallel_stream) names the memory it
 * reads; the pool remembers which call followed which, keyed by the first region's address, and
 * when a call is done it publishes the regions that followed it last time. Idle workers then
 * prefetch the head of each part the next call will likely be split into, until that call
 * arrives, so its threads start on lines already cached instead of waiting for memory. A wrong
 * guess costs bandwidth only: a prefetch never faults, even on memory freed since.
 */
#define SUCCESSORS 4096 /* a power of two: the hash keeps the top 12 bits */
/*
 * Bytes prefetched ahead of a call, at most, over its parts: about what one worker brings in
 * during the JS between two Mamba mixers; between Llama's kernels it is stopped sooner. Against
 * 256 KiB, this measured alike on Llama-small and ~6% faster on Mamba-130m's decode.
 */
#define READ_AHEAD_BYTES ((size_t)2048 << 10)
static struct successor {
  const void *key;
  int count;
  unsigned long used; /* when it last learned a successor: stale keys (freed weights) go first */
  struct tessera_region next[TESSERA_REGIONS_MAX];
} successors[SUCCESSORS];
static unsigned long learned; /* under pool_lock */
static const void *previous_key; /* the last streaming call's key; under pool_lock */
/* The published read-ahead: its regions are written before `ahead_seq` is bumped (release). */
static struct {
  _Atomic(const char *) start;
  atomic_size_t bytes;
} ahead[TESSERA_REGIONS_MAX];
static atomic_int ahead_count;
static atomic_uint ahead_seq;
static atomic_int read_ahead_on = 1;

void tessera_pool_set_read_ahead(int on) { atomic_store(&read_ahead_on, on != 0); }

int tessera_pool_read_ahead_published(size_t *bytes, unsigned *seq) {
  *seq = atomic_load_explicit(&ahead_seq, memory_order_acquire);
  const int count = atomic_load_explicit(&ahead_count, memory_order_relaxed);
  for (int i = 0; i < count; i++) bytes[i] = atomic_load_explicit(&ahead[i].bytes, memory_order_relaxed);
  return count;
}

/*
 * The entry of `key`, or (insert) one to hold it: one of 8 slots from its hash, an empty one or
 * else the one that learned least recently. A decode step has ~100 keys, and the keys of freed
 * weights stay behind, so one slot per hash (or a few among 512) lost live successors to
 * collisions. The hash multiplies the address (weights lie at correlated addresses, e.g. 2 MiB
 * apart) and keeps its top bits.
 */
#define SUCCESSOR_PROBES 8
static struct successor *successor_of(const void *key, int insert) {
  const size_t h = (size_t)((((uint64_t)(uintptr_t)key >> 6) * 0x9E3779B97F4A7C15ull) >> 52);
  struct successor *victim = NULL;
  for (int i = 0; i < SUCCESSOR_PROBES; i++) {
    struct successor *slot = &successors[(h + (size_t)i) % SUCCESSORS];
    if (slot->key == key) return slot;
    if (victim == NULL || (victim->key != NULL && (slot->key == NULL || slot->used < victim->used))) victim = slot;
  }
  return insert ? victim : NULL;
}

/* Under pool_lock: learn that this call followed the previous one, and publish what followed this one last time. */
static void learn_and_publish(const struct tessera_region *reads, int count) {
  if (count > TESSERA_REGIONS_MAX) count = TESSERA_REGIONS_MAX;
  if (previous_key != NULL) {
    struct successor *previous = successor_of(previous_key, 1);
    previous->key = previous_key;
    previous->used = ++learned;
    previous->count = count;
    for (int i = 0; i < count; i++) previous->next[i] = reads[i];
  }
  previous_key = reads[0].start;
  const struct successor *next = successor_of(reads[0].start, 0);
  if (next == NULL || !atomic_load_explicit(&read_ahead_on, memory_order_relaxed)) return;
  for (int i = 0; i < next->count; i++) {
    atomic_store_explicit(&ahead[i].start, (const char *)next->next[i].start, memory_order_relaxed);
    atomic_store_explicit(&ahead[i].bytes, next->next[i].bytes, memory_order_relaxed);
  }
  atomic_store_explicit(&ahead_count, next->count, memory_order_relaxed);
  atomic_fetch_add_explicit(&ahead_seq, 1, memory_order_release);
}

/* The address `offset` bytes into the published regions laid end to end (NULL past their end). */
static const char *ahead_at(size_t offset) {
  const int count = atomic_load_explicit(&ahead_count, memory_order_relaxed);
  for (int i = 0; i < count; i++) {
    const size_t bytes = atomic_load_explicit(&ahead[i].bytes, memory_order_relaxed);
    if (offset < bytes) return atomic_load_explicit(&ahead[i].start, memory_order_relaxed) + offset;
    offset -= bytes;
  }
  return NULL;
}

/*
 * Worker `id` of `workers` prefetches the heads of the published call's parts (split as a call
 * over `threads` splits them: equal shares of its bytes, the rows being of one width) that are
 * its to fetch, line by line across them, until a call later than `call` is published.
 */
static void read_ahead(size_t id, size_t workers, int threads, unsigned long call) {
  if (workers < id) workers = id; /* a worker can start before the count that includes it is stored */
  const int count = atomic_load_explicit(&ahead_count, memory_order_relaxed);
  size_t total = 0;
  for (int i = 0; i < count; i++) total += atomic_load_explicit(&ahead[i].bytes, memory_order_relaxed);
  const size_t parts = threads > 1 ? (size_t)threads : 1;
  const size_t head = READ_AHEAD_BYTES / parts < total / parts ? READ_AHEAD_BYTES / parts : total / parts;
  for (size_t at = 0; at < head; at += 64) {
    for (size_t part = id - 1; part < parts; part += workers) {
      const char *line = ahead_at(total / parts * part + at);
      if (line != NULL) __builtin_prefetch(line, 0, 2);
    }
    if ((at & 2047) == 0 && (atomic_load_explicit(&claim, memory_order_relaxed) >> 16) != call) return;
  }
}

/* The claim word current when each worker was started (before the call that started it published its own). */
static unsigned long start_claim[MAX_THREADS];

void tessera_pool_rest(void) { atomic_fetch_add_explicit(&rest_requests, 1, memory_order_relaxed); }

static void *worker(void *arg) {
  const size_t id = (size_t)(uintptr_t)arg;
  unsigned long seen = start_claim[id] >> 16;
  /* Read before the parts of a call run, so a rest asked for right after the call is seen. */
  unsigned rests = atomic_load_explicit(&rest_requests, memory_order_relaxed);
  unsigned ahead_seen = atomic_load_explicit(&ahead_seq, memory_order_relaxed);
  for (;;) {
    unsigned long now = atomic_load_explicit(&claim, memory_order_acquire) >> 16;
    const long spin_start = monotonic_ns();
    while (now == seen && monotonic_ns() - spin_start < SPIN_NS &&
           atomic_load_explicit(&rest_requests, memory_order_relaxed) == rests) {
      const unsigned published = atomic_load_explicit(&ahead_seq, memory_order_acquire);
      if (published != ahead_seen) {
        ahead_seen = published;
        read_ahead(id, (size_t)atomic_load_explicit(&workers_started, memory_order_relaxed), tessera_threads(), seen);
      }
      cpu_relax();
      sched_yield();
      now = atomic_load_explicit(&claim, memory_order_acquire) >> 16;
    }
    if (now == seen) {
      pthread_mutex_lock(&sleep_lock);
      atomic_fetch_add(&sleepers, 1);
      while ((now = atomic_load(&claim) >> 16) == seen) pthread_cond_wait(&wake_up, &sleep_lock);
      atomic_fetch_sub(&sleepers, 1);
      pthread_mutex_unlock(&sleep_lock);
    }
    seen = now;
    rests = atomic_load_explicit(&rest_requests, memory_order_relaxed);
    claim_parts(now);
  }
  return NULL;
}

/*
 * A forked child has none of the parent's workers: it starts its own when it first needs them
 * (until then, as when thread creation fails, the caller claims every part itself).
 */
static void forget_workers(void) {
  workers_started = 0;
  atomic_store(&sleepers, 0);
}

static void register_fork_handler(void) { pthread_atfork(NULL, NULL, forget_workers); }

/* Start workers up to `wanted` (1..wanted-1 besides the caller). */
static void ensure_workers(size_t wanted) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, register_fork_handler);
  while ((size_t)workers_started + 1 < wanted && workers_started + 1 < MAX_THREADS) {
    pthread_t id;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    start_claim[workers_started + 1] = atomic_load(&claim);
    const int failed = pthread_create(&id, &attr, worker, (void *)(uintptr_t)(workers_started + 1));
    pthread_attr_destroy(&attr);
    if (failed) break; /* fewer workers: the caller claims the parts they would have run */
    workers_started++;
  }
}

/* Polls of the parts still running before the waiting caller starts yielding its core. */
#define WAIT_POLLS 64

void tessera_parallel_for(size_t n, size_t grain, int threads, tessera_range_fn fn, void *ctx) {
  tessera_parallel_stream(n, grain, threads, fn, ctx, NULL, 0);
}

void tessera_parallel_stream(size_t n, size_t grain, int threads, tessera_range_fn fn, void *ctx,
                             const struct tessera_region *reads, int count) {
  if (grain < 1) grain = 1;
  size_t parts = n / grain;
  if (parts > (size_t)threads) parts = (size_t)threads;
  if (parts > MAX_THREADS) parts = MAX_THREADS;
  if (parts <= 1 && (count == 0 || n == 0)) {
    if (n > 0) fn(ctx, 0, n);
    return;
  }
  if (inside_part || pthread_mutex_trylock(&pool_lock) != 0) {
    if (parts <= 1) parts = 1;
    for (size_t i = 0; i < parts; i++) fn(ctx, n * i / parts, n * (i + 1) / parts);
    return;
  }
  if (parts <= 1) { /* one part, n > 0, and regions to learn from */
    fn(ctx, 0, n);
    learn_and_publish(reads, count);
    pthread_mutex_unlock(&pool_lock);
    return;
  }
  ensure_workers(parts);
  job.fn = fn;
  job.ctx = ctx;
  job.n = n;
  job.parts = parts;
  atomic_store_explicit(&parts_done, 0, memory_order_relaxed);
  const unsigned long call = (atomic_load_explicit(&claim, memory_order_relaxed) >> 16) + 1;
  atomic_store_explicit(&claim, (call << 16) | (parts << 8), memory_order_seq_cst);
  if (atomic_load(&sleepers) > 0) {
    pthread_mutex_lock(&sleep_lock);
    pthread_cond_broadcast(&wake_up);
    pthread_mutex_unlock(&sleep_lock);
  }
  claim_parts(call);
  for (int polls = 0; atomic_load_explicit(&parts_done, memory_order_acquire) < (int)parts; polls++) {
    if (polls < WAIT_POLLS) {
      cpu_relax();
    } else {
      sched_yield(); /* the worker running the last part may need this core */
    }
  }
  if (count > 0) learn_and_publish(reads, count);
  pthread_mutex_unlock(&pool_lock);
}
