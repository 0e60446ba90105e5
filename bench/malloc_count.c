/*
 * malloc_count.c — an LD_PRELOAD shim that counts heap allocations.
 *
 * bench/run compiles it (gcc -O2 -shared -fPIC) and starts a proxy with
 *   LD_PRELOAD=.../malloc_count.so MALLOC_COUNT_FILE=/tmp/.../counts
 * Every malloc / calloc / realloc / posix_memalign / aligned_alloc / memalign / valloc adds 1
 * to a call counter and the requested size to a byte counter. The counters live in a MAP_SHARED
 * mapping of MALLOC_COUNT_FILE, so the benchmark reads them with an ordinary file read at any
 * moment: no signal handler inside the proxy (loom owns its signals), no dump at exit, and the
 * counters stay shared across fork() (nginx's master and worker add to the same numbers; the
 * idle master adds nothing while the worker serves).
 *
 * Allocation goes to glibc's own entry points (__libc_malloc, ...), so behaviour and speed
 * are glibc's plus two atomic adds. free() is not wrapped: the memory comes from glibc anyway.
 *
 * File layout: two little-endian uint64 values, [calls, bytes].
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void *__libc_valloc(size_t);

/* Until the constructor maps the file (the loader may allocate before it runs), count here. */
static uint64_t early_counters[2];
static uint64_t *counters = early_counters;

__attribute__((constructor)) static void malloc_count_init(void) {
    const char *path = getenv("MALLOC_COUNT_FILE");
    if (path == NULL || path[0] == '\0') return;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return;
    if (ftruncate(fd, 2 * sizeof(uint64_t)) == 0) {
        void *map = mmap(NULL, 2 * sizeof(uint64_t), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (map != MAP_FAILED) counters = (uint64_t *)map;
    }
    close(fd);
}

static inline void count(size_t size) {
    __atomic_fetch_add(&counters[0], 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&counters[1], (uint64_t)size, __ATOMIC_RELAXED);
}

void *malloc(size_t size) { count(size); return __libc_malloc(size); }

void *calloc(size_t n, size_t size) { count(n * size); return __libc_calloc(n, size); }

void *realloc(void *ptr, size_t size) { count(size); return __libc_realloc(ptr, size); }

void *memalign(size_t alignment, size_t size) { count(size); return __libc_memalign(alignment, size); }

void *aligned_alloc(size_t alignment, size_t size) { count(size); return __libc_memalign(alignment, size); }

void *valloc(size_t size) { count(size); return __libc_valloc(size); }

int posix_memalign(void **out, size_t alignment, size_t size) {
    /* posix_memalign's contract: a power of two multiple of sizeof(void *), else EINVAL. */
    if (alignment % sizeof(void *) != 0 || (alignment & (alignment - 1)) != 0) return EINVAL;
    count(size);
    void *p = __libc_memalign(alignment, size);
    if (p == NULL) return ENOMEM;
    *out = p;
    return 0;
}
