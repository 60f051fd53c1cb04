/*
 * Weights on 2 MiB pages. Decode streams every weight once per token, and on 4 KiB pages the
 * hardware prefetchers stop at each page boundary and the TLB misses every few rows: on this
 * machine a 2-thread read of 600 MB runs at ~17 GB/s on 4 KiB pages and ~22.5 GB/s on 2 MiB ones.
 * Linux gives anonymous memory huge pages where it is advised (THP "madvise" mode, the usual
 * default) to pages first touched after the advice, so the copy is made into fresh, advised memory.
 */
#define _GNU_SOURCE
#include "kernels.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#if defined(__linux__)
#include <sys/mman.h>
#endif

#define HUGE_PAGE ((size_t)2 << 20)

void *tessera_huge_copy(const void *data, size_t bytes) {
  const size_t size = (bytes + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
  void *out = NULL;
  if (size == 0 || posix_memalign(&out, HUGE_PAGE, size) != 0) return NULL;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  /*
   * Advice only: without THP the copy still works. Only the whole huge pages the data fills are
   * advised: a huge page over the last partial one would make all 2 MiB of it resident, up to
   * twice the weight's size for one just over a page (a 2.4 MB projection in 4 MiB).
   */
  const size_t whole = bytes & ~(HUGE_PAGE - 1);
  if (whole > 0) madvise(out, whole, MADV_HUGEPAGE);
#if defined(MADV_NOHUGEPAGE)
  if (size > whole) madvise((char *)out + whole, size - whole, MADV_NOHUGEPAGE);
#endif
#endif
  memcpy(out, data, bytes);
  return out;
}

void tessera_huge_free(void *data) { free(data); }

int tessera_release_free_memory(void) {
#if defined(__GLIBC__)
  return malloc_trim(0);
#else
  return 0;
#endif
}

/*
 * Kernel scratch buffers kept between calls, one per concurrently running part (claimed
 * atomically), so a prefill's many GEMMs do not map and fault in fresh pages each time. Parts
 * beyond the slots allocate their own.
 */
#define SLOTS 64
static struct {
  atomic_int busy;
  void *data;
  size_t bytes;
} slots[SLOTS];

void *tessera_claim_buffer(size_t bytes, int *slot) {
  bytes = (bytes + 63) & ~(size_t)63; /* aligned_alloc wants a multiple of the alignment */
  for (int i = 0; i < SLOTS; i++) {
    int idle = 0;
    if (!atomic_compare_exchange_strong(&slots[i].busy, &idle, 1)) continue;
    if (slots[i].bytes < bytes) {
      free(slots[i].data);
      slots[i].data = aligned_alloc(64, bytes);
      slots[i].bytes = slots[i].data != NULL ? bytes : 0;
    }
    if (slots[i].data == NULL) {
      atomic_store(&slots[i].busy, 0);
      return NULL;
    }
    *slot = i;
    return slots[i].data;
  }
  *slot = -1;
  return aligned_alloc(64, bytes);
}

void tessera_release_buffer(void *data, int slot) {
  if (slot < 0) free(data);
  else atomic_store(&slots[slot].busy, 0);
}
