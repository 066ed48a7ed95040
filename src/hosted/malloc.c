/*
 * libpoolkit-malloc.so: the malloc family (LD_PRELOAD) built on poolkit's
 * allocators, for Linux. README "The malloc drop-in" says how to use it.
 *
 * Where a block comes from, by size (after alignment):
 * - small, up to SMALL_MAX bytes: size classes (16-byte steps to 256, then
 *   four per power of two to 1 KiB). Each class is a set of pages of
 *   PAGE_SIZE bytes, each page a pk_pool of the class's block size.
 * - medium, up to MEDIUM_MAX: a pk_heap (TLSF) per chunk, so bounded time
 *   and boundary tags that merge freed neighbours at once. All threads share
 *   these chunks, under one lock (medium_arena says why).
 * - large: whole pages from mmap, one mapping per block (mremap grows them
 *   without a copy). Up to LARGE_CACHE_COUNT freed mappings, together at most
 *   half the peak of live large bytes (at least LARGE_CACHE_MIN_BYTES), are
 *   kept for reuse, trimmed or grown with mremap to the next request: a
 *   program that allocates and frees big buffers again and again then pays
 *   few system calls and page faults (glibc keeps such memory too, raising
 *   its mmap threshold up to 32 MiB as blocks are freed).
 * MEDIUM_MAX is glibc's first mmap threshold, 128 KiB: with 512 KiB, the
 * vectors of bench/malloc/realloc_growth.c, doubling through 256 and 512 KiB
 * in 4 MiB heaps, cost 1.24x glibc's peak RSS (now 1.0x).
 * Small pages and medium heaps live in chunks of CHUNK_SIZE bytes aligned to
 * their size, mapped with mmap; a two-level table of chunk addresses (the
 * chunk map) tells in O(1), without touching the pointer's memory, whether a
 * pointer is in one of our chunks, and which.
 *
 * Threads: each thread allocates small blocks from its own heap (struct
 * thread_heap: its classes' pages), without a lock. A small block freed by
 * another thread is pushed on its owner heap's lock-free stack of remote
 * frees, which the owner drains when an allocation needs a new page. A heap
 * whose thread exits is abandoned, whole, to the next thread that starts (so
 * memory stays bounded by the threads alive at once); blocks freed into it
 * meanwhile wait on its stack.
 *
 * Memory goes back to the OS: a small page whose blocks are all free returns
 * to its chunk at once (it may serve another class); a chunk whose pages or
 * heap are all free is unmapped, unless its owner (a thread heap, or the
 * medium arena) keeps fewer than EMPTY_CHUNKS_KEPT empty chunks: those serve
 * its next chunks. An owner whose use swings by a few chunks (a producer
 * whose blocks another thread frees in batches) otherwise maps, faults in
 * and unmaps a chunk at each swing: keeping one empty chunk, a version
 * unmapped 774 of the 781 chunks it mapped in such a test and spent 2.9 s
 * in the kernel where glibc took 0.5 to 1.4 s. Kept chunks stay resident,
 * at most EMPTY_CHUNKS_KEPT * CHUNK_SIZE bytes an owner, for memory the
 * program had in use before. Large blocks are unmapped when freed, beyond
 * the cache above.
 *
 * Before the first thread heap exists, and while one is being set up (the
 * dynamic loader, libc's start-up and pthread calls may allocate), blocks
 * come from a static bootstrap region; freeing them does nothing. A pointer
 * that is none of ours (from glibc's allocator: __libc_malloc) is handed back
 * to glibc.
 *
 * fork: pthread_atfork takes every lock of the drop-in around fork; in the
 * child, the heaps of the threads that do not exist there are retired (they
 * may have been in the middle of an operation) and never reused.
 *
 * POOLKIT_MALLOC_STATS=1 prints a summary per allocator at exit, on stderr
 * with write(2); POOLKIT_MALLOC_CHECK=1 verifies every heap's invariants
 * then (heap_check) and prints the verdict. The debug build
 * (libpoolkit-malloc-debug.so, PK_DEBUG) puts the same blocks in debug pools
 * and heaps: guards, poison, quarantine and the faults they find reported
 * through poolkit's fault handler.
 *
 * With PKM_PREFIX defined, the functions are named pkm_malloc and so on, so
 * that a test program can link the allocator under a sanitizer.
 */
#define _GNU_SOURCE /* NOLINT(bugprone-reserved-identifier,cert-dcl37-c,cert-dcl51-cpp): mremap, RTLD_NEXT */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/internal.h"
#include "pool_fast.h"
#include "poolkit/heap.h"
#include "poolkit/pool.h"

#ifdef PKM_PREFIX
#define PKM_API(name) pkm_##name
#else
#define PKM_API(name) name
#endif
#define PKM_EXPORT __attribute__((visibility("default")))

/* Exported (they are the drop-in), so each has a prototype here: the
 * prefixed names have none elsewhere. */
PKM_EXPORT void *PKM_API(malloc)(size_t size);
PKM_EXPORT void PKM_API(free)(void *ptr);
PKM_EXPORT void *PKM_API(calloc)(size_t count, size_t size);
PKM_EXPORT void *PKM_API(realloc)(void *ptr, size_t size);
PKM_EXPORT void *PKM_API(reallocarray)(void *ptr, size_t count, size_t size);
PKM_EXPORT int PKM_API(posix_memalign)(void **out, size_t align, size_t size);
PKM_EXPORT void *PKM_API(aligned_alloc)(size_t align, size_t size);
PKM_EXPORT void *PKM_API(memalign)(size_t align, size_t size);
PKM_EXPORT void *PKM_API(valloc)(size_t size);
PKM_EXPORT void *PKM_API(pvalloc)(size_t size);
PKM_EXPORT size_t PKM_API(malloc_usable_size)(void *ptr);

/* glibc's own allocator, for the pointers it handed out (exported by every
 * glibc under these reserved names). */
extern void __libc_free(void *ptr);                 /* NOLINT(bugprone-reserved-identifier,cert-dcl37-c,cert-dcl51-cpp) */
extern void *__libc_realloc(void *ptr, size_t size); /* NOLINT(bugprone-reserved-identifier,cert-dcl37-c,cert-dcl51-cpp) */

#define CHUNK_SHIFT 22u
#define CHUNK_SIZE ((size_t)1 << CHUNK_SHIFT) /* 4 MiB */
#define PAGE_SHIFT 16u
#define PAGE_SIZE ((size_t)1 << PAGE_SHIFT)   /* 64 KiB: 64 pages a chunk */
#define PAGES_PER_CHUNK (CHUNK_SIZE / PAGE_SIZE)
#define CLASS_COUNT 24u
#define SMALL_MAX ((size_t)1024)
#define MEDIUM_MAX ((size_t)128 * 1024)
/* The largest alignment a medium block takes from its chunk's heap. */
#define MEDIUM_ALIGN_MAX ((size_t)64 * 1024)
#define MIN_ALIGN ((size_t)16)
#define EMPTY_CHUNKS_KEPT 4u
#define LARGE_CACHE_COUNT 16u
#define LARGE_CACHE_MIN_BYTES ((size_t)64 << 20)
#define BOOTSTRAP_SIZE ((size_t)256 * 1024)

#define UNLIKELY(x) __builtin_expect(!!(x), 0)
#define LIKELY(x) __builtin_expect(!!(x), 1)

static const size_t class_size[CLASS_COUNT] = {
    16, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224, 240, 256,
    320, 384, 448, 512, 640, 768, 896, 1024};

/* The class of a request of n bytes, indexed by ceil(n / 16) (0..64). */
static const unsigned char class_of_granule[SMALL_MAX / 16 + 1] = {
    0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
    16, 16, 16, 16, 17, 17, 17, 17, 18, 18, 18, 18, 19, 19, 19, 19,
    20, 20, 20, 20, 20, 20, 20, 20, 21, 21, 21, 21, 21, 21, 21, 21,
    22, 22, 22, 22, 22, 22, 22, 22, 23, 23, 23, 23, 23, 23, 23, 23};

static inline unsigned class_of(size_t n)
{
    return class_of_granule[(n + 15) >> 4];
}

/* ---- Chunks, pages and thread heaps --------------------------------- */

enum chunk_kind { CHUNK_EMPTY = 0, CHUNK_SMALL, CHUNK_MEDIUM };
enum page_state { PAGE_UNUSED = 0, PAGE_CURRENT, PAGE_PARTIAL, PAGE_FULL };
enum heap_state { HEAP_OWNED = 1, HEAP_ABANDONED, HEAP_RETIRED };

struct thread_heap;

typedef struct page {
    pk_pool pool;
    struct page *next, *prev;  /* in its class's list of partial pages */
    unsigned char state;       /* enum page_state */
    unsigned char size_class;
} page;

typedef struct chunk {
    struct thread_heap *owner; /* a small chunk's heap (NULL for medium ones) */
    unsigned kind;             /* enum chunk_kind */
    struct chunk *next, *prev; /* in its chunk set's list */
} chunk;

/* The chunks of one kind that one owner holds: a thread heap its small
 * chunks, the medium arena the medium ones. */
typedef struct {
    chunk *in_use;
    chunk *empty;              /* kept for reuse, linked through next */
    unsigned empty_count;
    uint64_t mapped, unmapped;
} chunk_set;

typedef struct {
    chunk head;
    uint64_t free_pages;       /* bit i: page i is not in use */
    page pages[PAGES_PER_CHUNK];
} small_chunk;

typedef struct {
    chunk head;
    pk_heap heap;
} medium_chunk;

static inline pk_heap *chunk_heap(chunk *c)
{
    return &((medium_chunk *)(void *)c)->heap;
}

/* The pages of a small chunk that its header covers (never handed out). */
#define HEADER_PAGES ((sizeof(small_chunk) + PAGE_SIZE - 1) / PAGE_SIZE)
#define MEDIUM_HEADER (((sizeof(medium_chunk) + 63u) / 64u) * 64u)
PK_STATIC_ASSERT(HEADER_PAGES < PAGES_PER_CHUNK / 2, "small chunk header too large");

typedef struct {
    page *current;             /* the page allocations come from (or &no_page) */
    page *partial;             /* other pages with a free block */
} size_class_state;

typedef struct thread_heap {
    size_class_state classes[CLASS_COUNT];
    chunk_set chunks;
    _Atomic(void *) remote_frees; /* blocks freed by other threads, linked through their first word */
    unsigned state;            /* enum heap_state, written under registry_lock */
    struct thread_heap *next_all;      /* every heap, for the stats and fork */
    struct thread_heap *next_abandoned;
    uint64_t remote_drained;   /* blocks taken from remote_frees */
} thread_heap;

/* Medium blocks of every thread come from one set of chunks under one lock.
 * Giving each thread its own medium chunks, as it has its own small pages, cost
 * 1.39x glibc's peak RSS in the larson benchmark (bench/malloc/larson.c),
 * against 1.0x shared: a thread's medium population there swings as it
 * allocates while others free its older blocks, so the sum of the per-thread
 * peaks was twice the whole's; two arenas (threads split between them)
 * still cost 1.2x. Medium requests are rarer than small ones and each
 * writes a kilobyte or more: the lock costs little beside that. */
static struct {
    pthread_mutex_t lock;
    chunk_set chunks;
    chunk *current;            /* the chunk the last allocation came from */
} medium_arena = {PTHREAD_MUTEX_INITIALIZER, {NULL, NULL, 0, 0, 0}, NULL};

/* The page every class starts with: its pool has no block, so the fast path
 * falls through to the slow one, which replaces it. */
static page no_page;

static __thread thread_heap *my_heap __attribute__((tls_model("initial-exec")));
/* Set while this thread sets up its heap or the drop-in: allocations made
 * meanwhile (by pthread or dlsym) come from the bootstrap region. */
static __thread bool in_setup __attribute__((tls_model("initial-exec")));

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static thread_heap *all_heaps;
static thread_heap *abandoned_heaps;
static unsigned char *heap_store;      /* carved into thread_heap structs */
static size_t heap_store_left;
static pthread_key_t heap_key;
static pthread_once_t setup_once = PTHREAD_ONCE_INIT;
static bool stats_at_exit, check_at_exit;
/* A copy of stderr for the reports at exit, taken at setup: programs such as
 * coreutils close stderr in an atexit handler, before destructors run. */
static int report_fd = -1;
static size_t (*libc_usable_size)(void *);

/* Process-wide counters (relaxed atomics: read for the stats only). */
static _Atomic size_t mapped_bytes, mapped_peak;
static _Atomic uint64_t foreign_frees, enomem_count;

/* ---- The OS ---------------------------------------------------------- */

static void count_mapped(size_t bytes)
{
    size_t now = atomic_fetch_add_explicit(&mapped_bytes, bytes, memory_order_relaxed) + bytes;
    size_t peak = atomic_load_explicit(&mapped_peak, memory_order_relaxed);
    while (now > peak &&
           !atomic_compare_exchange_weak_explicit(&mapped_peak, &peak, now, memory_order_relaxed,
                                                  memory_order_relaxed)) {
    }
}

static void *os_map(size_t size)
{
    /* cppcheck-suppress invalidFunctionArg ; an anonymous mapping takes fd -1 */
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        return NULL;
    }
    count_mapped(size);
    return p;
}

static void os_unmap(void *p, size_t size)
{
    if (size != 0) {
        (void)munmap(p, size);
        atomic_fetch_sub_explicit(&mapped_bytes, size, memory_order_relaxed);
    }
}

/* size bytes aligned to align (a power of two, a multiple of the OS page),
 * or NULL. Tries a plain mapping first: consecutive mappings are often
 * adjacent, so an aligned chunk tends to be followed by aligned ones. */
static void *os_map_aligned(size_t size, size_t align)
{
    unsigned char *p = os_map(size);
    if (p == NULL || ((uintptr_t)p & (align - 1)) == 0) {
        return p;
    }
    os_unmap(p, size);
    size_t padded;
    if (pk__add_overflows(size, align, &padded) || (p = os_map(padded)) == NULL) {
        return NULL;
    }
    size_t head = (align - ((uintptr_t)p & (align - 1))) & (align - 1);
    os_unmap(p, head);
    os_unmap(p + head + size, padded - head - size);
    return p + head;
}

/* ---- The chunk map ---------------------------------------------------- */

/* Chunk numbers (address >> CHUNK_SHIFT) of a 48-bit address space, split
 * into a static top level and leaves mapped on first use. */
#define MAP_ADDRESS_BITS 48u
#define MAP_LEAF_BITS 13u
#define MAP_TOP_BITS (MAP_ADDRESS_BITS - CHUNK_SHIFT - MAP_LEAF_BITS)
typedef _Atomic(chunk *) map_leaf[(size_t)1 << MAP_LEAF_BITS];
static _Atomic(map_leaf *) chunk_map[(size_t)1 << MAP_TOP_BITS];

static inline chunk *chunk_of(const void *ptr)
{
    uint64_t number = (uint64_t)(uintptr_t)ptr >> CHUNK_SHIFT;
    uint64_t top = number >> MAP_LEAF_BITS;
    if (UNLIKELY(top >= ((uint64_t)1 << MAP_TOP_BITS))) {
        return NULL;
    }
    map_leaf *leaf = atomic_load_explicit(&chunk_map[top], memory_order_acquire);
    if (UNLIKELY(leaf == NULL)) {
        return NULL;
    }
    return atomic_load_explicit(&(*leaf)[number & (((uint64_t)1 << MAP_LEAF_BITS) - 1)],
                                memory_order_relaxed);
}

/* Records c (or NULL) as the chunk at c's address; false when the address is
 * outside the map or its leaf cannot be mapped. */
static bool chunk_map_set(void *at, chunk *c)
{
    uint64_t number = (uint64_t)(uintptr_t)at >> CHUNK_SHIFT;
    uint64_t top = number >> MAP_LEAF_BITS;
    if (top >= ((uint64_t)1 << MAP_TOP_BITS)) {
        return false;
    }
    map_leaf *leaf = atomic_load_explicit(&chunk_map[top], memory_order_acquire);
    if (leaf == NULL) {
        map_leaf *fresh = os_map(sizeof(map_leaf));
        if (fresh == NULL) {
            return false;
        }
        if (atomic_compare_exchange_strong_explicit(&chunk_map[top], &leaf, fresh,
                                                    memory_order_acq_rel, memory_order_acquire)) {
            leaf = fresh;
        } else {
            os_unmap(fresh, sizeof(map_leaf)); /* another thread's leaf is in place */
        }
    }
    atomic_store_explicit(&(*leaf)[number & (((uint64_t)1 << MAP_LEAF_BITS) - 1)], c,
                          memory_order_relaxed);
    return true;
}

/* ---- The bootstrap region -------------------------------------------- */

/* Each bootstrap block is preceded by its size. */
static _Alignas(64) unsigned char bootstrap[BOOTSTRAP_SIZE];
static _Atomic size_t bootstrap_used;

static bool in_bootstrap(const void *ptr)
{
    return (const unsigned char *)ptr >= bootstrap &&
           (const unsigned char *)ptr < bootstrap + BOOTSTRAP_SIZE;
}

static void *bootstrap_alloc(size_t size, size_t align)
{
    if (align < MIN_ALIGN) {
        align = MIN_ALIGN;
    }
    if (size > BOOTSTRAP_SIZE || align > BOOTSTRAP_SIZE / 4) {
        return NULL;
    }
    size_t used = atomic_load_explicit(&bootstrap_used, memory_order_relaxed);
    size_t start, end;
    do {
        start = (used + sizeof(size_t) + align - 1) & ~(align - 1);
        end = start + ((size + MIN_ALIGN - 1) & ~(MIN_ALIGN - 1));
        if (end > BOOTSTRAP_SIZE) {
            return NULL;
        }
    } while (!atomic_compare_exchange_weak_explicit(&bootstrap_used, &used, end,
                                                    memory_order_relaxed, memory_order_relaxed));
    memcpy(bootstrap + start - sizeof(size_t), &size, sizeof size);
    return bootstrap + start;
}

static size_t bootstrap_size(const void *ptr)
{
    size_t size;
    memcpy(&size, (const unsigned char *)ptr - sizeof(size_t), sizeof size);
    return size;
}

/* ---- Setup, thread heaps, fork ---------------------------------------- */

static void heap_abandon(void *heap);
static void drain_remote_frees(thread_heap *h);

static void fork_prepare(void);
static void fork_parent(void);
static void fork_child(void);

/* Whether the environment variable name is set to something other than
 * empty or "0". */
static bool env_flag(const char *name)
{
    const char *value = getenv(name);
    return value != NULL && value[0] != '\0' && value[0] != '0';
}

static void setup_process(void)
{
    stats_at_exit = env_flag("POOLKIT_MALLOC_STATS");
    check_at_exit = env_flag("POOLKIT_MALLOC_CHECK");
    if (stats_at_exit || check_at_exit) {
        report_fd = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
    }
    if (!PK_DEBUG && env_flag("POOLKIT_MALLOC_DEBUG")) {
        static const char note[] =
            "poolkit-malloc: POOLKIT_MALLOC_DEBUG is ignored by this release build; "
            "preload libpoolkit-malloc-debug.so for guards and poisoning\n";
        pk__write_all(STDERR_FILENO, note, sizeof note - 1);
    }
    /* dlsym returns a function as an object pointer (POSIX): copied, since
     * ISO C has no cast between the two. */
    void *symbol = dlsym(RTLD_NEXT, "malloc_usable_size");
    memcpy(&libc_usable_size, &symbol, sizeof libc_usable_size);
    (void)pthread_key_create(&heap_key, heap_abandon);
    (void)pthread_atfork(fork_prepare, fork_parent, fork_child);
}

static thread_heap *heap_new_locked(void)
{
    const size_t stride = (sizeof(thread_heap) + 63u) & ~(size_t)63u;
    if (heap_store_left < stride) {
        const size_t store_size = (size_t)64 * 1024;
        heap_store = os_map(store_size);
        heap_store_left = heap_store != NULL ? store_size : 0;
        if (heap_store == NULL) {
            return NULL;
        }
    }
    thread_heap *h = (thread_heap *)(void *)heap_store;
    heap_store += stride;
    heap_store_left -= stride;
    for (unsigned c = 0; c < CLASS_COUNT; c++) {
        h->classes[c].current = &no_page;
    }
    h->next_all = all_heaps;
    all_heaps = h;
    return h;
}

/* This thread's heap, taken from the abandoned ones or made; NULL when no
 * memory is left for one. */
static PK__SLOW_PATH thread_heap *heap_acquire(void)
{
    in_setup = true;
    (void)pthread_once(&setup_once, setup_process);
    (void)pthread_mutex_lock(&registry_lock);
    thread_heap *h = abandoned_heaps;
    if (h != NULL) {
        abandoned_heaps = h->next_abandoned;
    } else {
        h = heap_new_locked();
    }
    if (h != NULL) {
        h->state = HEAP_OWNED;
    }
    (void)pthread_mutex_unlock(&registry_lock);
    if (h != NULL) {
        my_heap = h;
        (void)pthread_setspecific(heap_key, h);
        drain_remote_frees(h);
    }
    in_setup = false;
    return h;
}

/* The thread-exit destructor of heap_key. Blocks this thread frees later (in
 * other destructors) go to the heap's remote stack, or to a new heap. */
static void heap_abandon(void *heap)
{
    thread_heap *h = heap;
    drain_remote_frees(h);
    my_heap = NULL;
    (void)pthread_mutex_lock(&registry_lock);
    h->state = HEAP_ABANDONED;
    h->next_abandoned = abandoned_heaps;
    abandoned_heaps = h;
    (void)pthread_mutex_unlock(&registry_lock);
}

static pthread_mutex_t large_lock = PTHREAD_MUTEX_INITIALIZER;

static void fork_prepare(void)
{
    (void)pthread_mutex_lock(&registry_lock);
    (void)pthread_mutex_lock(&medium_arena.lock);
    (void)pthread_mutex_lock(&large_lock);
}

static void fork_parent(void)
{
    (void)pthread_mutex_unlock(&large_lock);
    (void)pthread_mutex_unlock(&medium_arena.lock);
    (void)pthread_mutex_unlock(&registry_lock);
}

static void fork_child(void)
{
    for (thread_heap *h = all_heaps; h != NULL; h = h->next_all) {
        if (h->state == HEAP_OWNED && h != my_heap) {
            h->state = HEAP_RETIRED;
        }
    }
    (void)pthread_mutex_unlock(&large_lock);
    (void)pthread_mutex_unlock(&medium_arena.lock);
    (void)pthread_mutex_unlock(&registry_lock);
}

/* ---- Chunks ------------------------------------------------------------ */

/* A chunk of the kind for set (owned by owner): one of its empty chunks, or
 * a new one. */
static chunk *chunk_new(chunk_set *set, unsigned kind, thread_heap *owner)
{
    chunk *c = set->empty;
    if (c != NULL) {
        set->empty = c->next;
        set->empty_count--;
    } else {
        c = os_map_aligned(CHUNK_SIZE, CHUNK_SIZE);
        if (c == NULL) {
            return NULL;
        }
        if (!chunk_map_set(c, c)) {
            os_unmap(c, CHUNK_SIZE);
            return NULL;
        }
        set->mapped++;
    }
    c->owner = owner;
    if (kind == CHUNK_SMALL) {
        small_chunk *sc = (small_chunk *)(void *)c;
        memset(sc->pages, 0, sizeof sc->pages);
        sc->free_pages = ~(uint64_t)0 << HEADER_PAGES;
    } else {
        medium_chunk *mc = (medium_chunk *)(void *)c;
        unsigned char *memory = (unsigned char *)c;
        (void)pk_heap_init(&mc->heap, memory + MEDIUM_HEADER, CHUNK_SIZE - MEDIUM_HEADER);
        pk_heap_set_name(&mc->heap, "malloc medium");
    }
    c->kind = kind;
    c->prev = NULL;
    c->next = set->in_use;
    if (set->in_use != NULL) {
        set->in_use->prev = c;
    }
    set->in_use = c;
    return c;
}

/* c has no live block left: kept among set's empty chunks, or unmapped when
 * set keeps EMPTY_CHUNKS_KEPT already. */
static void chunk_emptied(chunk_set *set, chunk *c)
{
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        set->in_use = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    c->kind = CHUNK_EMPTY;
    if (set->empty_count < EMPTY_CHUNKS_KEPT) {
        c->next = set->empty;
        set->empty = c;
        set->empty_count++;
        return;
    }
    (void)chunk_map_set(c, NULL);
    set->unmapped++;
    os_unmap(c, CHUNK_SIZE);
}

static inline size_t page_live(const page *pg)
{
#if PK_DEBUG
    return pk_pool_capacity(&pg->pool) - pk_pool_available(&pg->pool);
#else
    return (size_t)(pg->pool.allocs - pg->pool.frees);
#endif
}

static inline small_chunk *page_chunk(const page *pg)
{
    return (small_chunk *)(void *)((uintptr_t)pg & ~(uintptr_t)(CHUNK_SIZE - 1));
}

static void partial_push(size_class_state *cs, page *pg)
{
    pg->state = PAGE_PARTIAL;
    pg->prev = NULL;
    pg->next = cs->partial;
    if (cs->partial != NULL) {
        cs->partial->prev = pg;
    }
    cs->partial = pg;
}

static void partial_remove(size_class_state *cs, page *pg)
{
    if (pg->prev != NULL) {
        pg->prev->next = pg->next;
    } else {
        cs->partial = pg->next;
    }
    if (pg->next != NULL) {
        pg->next->prev = pg->prev;
    }
}

static void page_release(thread_heap *h, page *pg)
{
    small_chunk *sc = page_chunk(pg);
    pg->state = PAGE_UNUSED;
    sc->free_pages |= (uint64_t)1 << (pg - sc->pages);
    if (sc->free_pages == ~(uint64_t)0 << HEADER_PAGES) {
        chunk_emptied(&h->chunks, &sc->head);
    }
}

/* A page for class cls from one of h's chunks, or a new chunk. */
static page *page_take(thread_heap *h, unsigned cls)
{
    chunk *c = h->chunks.in_use;
    while (c != NULL && ((small_chunk *)(void *)c)->free_pages == 0) {
        c = c->next;
    }
    if (c == NULL && (c = chunk_new(&h->chunks, CHUNK_SMALL, h)) == NULL) {
        return NULL;
    }
    small_chunk *sc = (small_chunk *)(void *)c;
    unsigned index = (unsigned)__builtin_ctzll(sc->free_pages); /* 64 bits on 32-bit targets too */
    sc->free_pages &= ~((uint64_t)1 << index);
    page *pg = &sc->pages[index];
    (void)pk_pool_init(&pg->pool, (unsigned char *)sc + (size_t)index * PAGE_SIZE, PAGE_SIZE,
                       class_size[cls], MIN_ALIGN);
    pk_pool_set_name(&pg->pool, "malloc small");
    pg->size_class = (unsigned char)cls;
    pg->state = PAGE_CURRENT;
    return pg;
}

/* ---- Small blocks -------------------------------------------------------- */

static inline void *page_pop_fast(page *pg)
{
#if PK_DEBUG
    (void)pg;
    return NULL;
#else
    return pk__pool_pop_fast(&pg->pool);
#endif
}

/* A block of pg, carving one if need be, or NULL when all are live. */
static void *page_pop(page *pg)
{
    if (pg == &no_page || pk_pool_available(&pg->pool) == 0) {
        return NULL;
    }
    return pk_pool_alloc(&pg->pool);
}

static void small_free_local(thread_heap *h, small_chunk *sc, void *ptr);

static PK__SLOW_PATH void *small_alloc_slow(thread_heap *h, unsigned cls)
{
    drain_remote_frees(h);
    size_class_state *cs = &h->classes[cls];
    void *block = page_pop(cs->current);
    if (block != NULL) {
        return block;
    }
    if (cs->current != &no_page) {
        cs->current->state = PAGE_FULL;
    }
    page *pg = cs->partial;
    if (pg != NULL) {
        partial_remove(cs, pg);
        pg->state = PAGE_CURRENT;
    } else if ((pg = page_take(h, cls)) == NULL) {
        cs->current = &no_page;
        return NULL;
    }
    cs->current = pg;
    return page_pop(pg);
}

static inline void *small_alloc(thread_heap *h, unsigned cls)
{
    void *block = page_pop_fast(h->classes[cls].current);
    if (LIKELY(block != NULL)) {
        return block;
    }
    return small_alloc_slow(h, cls);
}

/* pg lost a block and is not the current page of its class. */
static PK__SLOW_PATH void page_after_free(thread_heap *h, page *pg)
{
    size_class_state *cs = &h->classes[pg->size_class];
    if (pg->state == PAGE_FULL) {
        partial_push(cs, pg);
    }
    if (pg->state == PAGE_PARTIAL && page_live(pg) == 0) {
        partial_remove(cs, pg);
        page_release(h, pg);
    }
}

/* A free the fast path declined: pk_pool_free frees the block or reports the
 * misuse (then nothing changed; a block whose guards were damaged is freed
 * all the same). */
static PK__SLOW_PATH void small_free_checked(thread_heap *h, page *pg, void *ptr)
{
    pk_status status = pk_pool_free(&pg->pool, ptr);
    if ((status == PK_OK || status == PK_ERR_GUARD_CORRUPT) && pg->state != PAGE_CURRENT) {
        page_after_free(h, pg);
    }
}

/* Every call here is a tail call, so the fast path saves no register. */
static inline void small_free_local(thread_heap *h, small_chunk *sc, void *ptr)
{
    page *pg = &sc->pages[((uintptr_t)ptr - (uintptr_t)sc) >> PAGE_SHIFT];
    if (PK_DEBUG || UNLIKELY(!pk__pool_push_fast(&pg->pool, ptr))) {
        small_free_checked(h, pg, ptr);
    } else if (UNLIKELY(pg->state != PAGE_CURRENT)) {
        page_after_free(h, pg);
    }
}

/* ---- Medium blocks ------------------------------------------------------- */

static inline void *medium_try(chunk *c, size_t size, size_t align)
{
    void *block = align <= MIN_ALIGN ? pk_heap_alloc(chunk_heap(c), size)
                                     : pk_heap_alloc_aligned(chunk_heap(c), size, align);
    if (block != NULL) {
        medium_arena.current = c;
    }
    return block;
}

/* A medium block from the chunk of the last one, another chunk, or a new
 * chunk: O(chunks) when the last one's chunk is full. */
static void *medium_alloc(size_t size, size_t align)
{
    (void)pthread_mutex_lock(&medium_arena.lock);
    void *block = medium_arena.current != NULL ? medium_try(medium_arena.current, size, align) : NULL;
    for (chunk *c = medium_arena.chunks.in_use; block == NULL && c != NULL; c = c->next) {
        block = c != medium_arena.current ? medium_try(c, size, align) : NULL;
    }
    if (block == NULL) {
        chunk *c = chunk_new(&medium_arena.chunks, CHUNK_MEDIUM, NULL);
        block = c != NULL ? medium_try(c, size, align) : NULL;
    }
    (void)pthread_mutex_unlock(&medium_arena.lock);
    return block;
}

static size_t medium_live(chunk *c)
{
    pk_stats stats;
    pk_heap_stats(chunk_heap(c), &stats);
    return (size_t)stats.live;
}

/* Frees a block of the medium chunk c (or reports the misuse: under the
 * arena's lock, so a fault handler must not allocate). */
static PK__SLOW_PATH void medium_free(chunk *c, void *ptr)
{
    (void)pthread_mutex_lock(&medium_arena.lock);
    if (pk_heap_free(chunk_heap(c), ptr) == PK_OK && medium_live(c) == 0) {
        if (medium_arena.current == c) {
            medium_arena.current = NULL;
        }
        chunk_emptied(&medium_arena.chunks, c);
    }
    (void)pthread_mutex_unlock(&medium_arena.lock);
}

/* Resizes a medium block within its chunk (in place, or moved there); NULL
 * when the chunk has no room (ptr kept). */
static void *medium_resize(chunk *c, void *ptr, size_t size)
{
    (void)pthread_mutex_lock(&medium_arena.lock);
    void *resized = pk_heap_realloc(chunk_heap(c), ptr, size);
    (void)pthread_mutex_unlock(&medium_arena.lock);
    return resized;
}

/* ---- Frees from other threads -------------------------------------------- */

/* A block on a remote-free stack holds the stack's link in its first word
 * and this mark, made from its address, in its second (every small block
 * has 16 bytes): a second free of the block before its owner takes it off
 * the stack is seen, and reported, rather than linking the stack into a
 * cycle. The owner clears the mark. */
static inline uintptr_t remote_mark(const void *ptr)
{
    return (uintptr_t)ptr ^ (uintptr_t)0x5a5ac3c3a5a53c3cull;
}

static void remote_free(thread_heap *owner, void *ptr)
{
    uintptr_t mark = remote_mark(ptr);
    uintptr_t seen;
    memcpy(&seen, (unsigned char *)ptr + sizeof(void *), sizeof seen);
    if (UNLIKELY(seen == mark)) {
        (void)pk_report_fault(PK_ERR_DOUBLE_FREE, "malloc small", ptr);
        return;
    }
    memcpy((unsigned char *)ptr + sizeof(void *), &mark, sizeof mark);
    void *head = atomic_load_explicit(&owner->remote_frees, memory_order_relaxed);
    do {
        memcpy(ptr, &head, sizeof head);
    } while (!atomic_compare_exchange_weak_explicit(&owner->remote_frees, &head, ptr,
                                                    memory_order_release, memory_order_relaxed));
}

static void drain_remote_frees(thread_heap *h)
{
    if (atomic_load_explicit(&h->remote_frees, memory_order_relaxed) == NULL) {
        return;
    }
    void *ptr = atomic_exchange_explicit(&h->remote_frees, NULL, memory_order_acquire);
    static const uintptr_t cleared = 0;
    while (ptr != NULL) {
        void *next;
        memcpy(&next, ptr, sizeof next);
        memcpy((unsigned char *)ptr + sizeof(void *), &cleared, sizeof cleared);
        small_free_local(h, (small_chunk *)(void *)chunk_of(ptr), ptr);
        h->remote_drained++;
        ptr = next;
    }
}

/* ---- Large blocks -------------------------------------------------------- */

/* A large block is a mapping of its own: the pointer handed out is the
 * mapping's start (aligned ones are trimmed to start there), so it is the
 * key of the table too. */
typedef struct {
    unsigned char *base;
    size_t map_size;
} large_block;

/* Live large blocks: an open-addressing table keyed by pointer (linear
 * probing, backward-shift deletion), grown at half load; and the cache of
 * freed mappings. Both under large_lock. */
static large_block *large_table;
static size_t large_capacity, large_count;
static large_block large_cache[LARGE_CACHE_COUNT];
static size_t large_cache_count, large_cache_bytes;
static uint64_t large_allocs, large_frees, large_cache_hits;
static size_t large_live_bytes, large_peak_bytes;

static size_t large_slot(const void *ptr, size_t capacity)
{
    uint64_t x = (uint64_t)(uintptr_t)ptr >> 12;
    x *= 0x9E3779B97F4A7C15ull;
    return (size_t)(x >> 32) & (capacity - 1);
}

static bool large_table_grow(void)
{
    size_t capacity = large_capacity == 0 ? 256 : large_capacity * 2;
    large_block *fresh = os_map(capacity * sizeof(large_block));
    if (fresh == NULL) {
        return false;
    }
    for (size_t i = 0; i < large_capacity; i++) {
        if (large_table[i].base != NULL) {
            size_t slot = large_slot(large_table[i].base, capacity);
            while (fresh[slot].base != NULL) {
                slot = (slot + 1) & (capacity - 1);
            }
            fresh[slot] = large_table[i];
        }
    }
    os_unmap(large_table, large_capacity * sizeof(large_block));
    large_table = fresh;
    large_capacity = capacity;
    return true;
}

static bool large_insert(const large_block *b)
{
    if ((large_count + 1) * 2 > large_capacity && !large_table_grow()) {
        return false;
    }
    size_t slot = large_slot(b->base, large_capacity);
    while (large_table[slot].base != NULL) {
        slot = (slot + 1) & (large_capacity - 1);
    }
    large_table[slot] = *b;
    large_count++;
    large_live_bytes += b->map_size;
    if (large_live_bytes > large_peak_bytes) {
        large_peak_bytes = large_live_bytes;
    }
    return true;
}

static large_block *large_find(const void *ptr)
{
    if (large_capacity == 0) {
        return NULL;
    }
    size_t slot = large_slot(ptr, large_capacity);
    while (large_table[slot].base != NULL) {
        if (large_table[slot].base == ptr) {
            return &large_table[slot];
        }
        slot = (slot + 1) & (large_capacity - 1);
    }
    return NULL;
}

static void large_remove(large_block *entry)
{
    size_t mask = large_capacity - 1;
    size_t hole = (size_t)(entry - large_table);
    large_live_bytes -= entry->map_size;
    large_count--;
    /* Backward shift: move up every later entry of the run whose home slot
     * is not between the hole and it, so that lookups never stop early. */
    for (size_t next = (hole + 1) & mask; large_table[next].base != NULL; next = (next + 1) & mask) {
        size_t home = large_slot(large_table[next].base, large_capacity);
        if (((next - home) & mask) >= ((next - hole) & mask)) {
            large_table[hole] = large_table[next];
            hole = next;
        }
    }
    large_table[hole].base = NULL;
}

static size_t os_page_size(void)
{
    static _Atomic size_t cached;
    size_t size = atomic_load_explicit(&cached, memory_order_relaxed);
    if (size == 0) {
        size = (size_t)sysconf(_SC_PAGESIZE);
        atomic_store_explicit(&cached, size, memory_order_relaxed);
    }
    return size;
}

/* Takes from the cache, under large_lock, the mapping that best serves a
 * request of want bytes: the smallest at least as large, else the largest.
 * false when the cache is empty. */
static bool large_cache_take(size_t want, large_block *out)
{
    size_t best = LARGE_CACHE_COUNT;
    for (size_t i = 0; i < large_cache_count; i++) {
        size_t have = large_cache[i].map_size;
        size_t best_have = best < LARGE_CACHE_COUNT ? large_cache[best].map_size : 0;
        bool fits = have >= want, best_fits = best_have >= want;
        if (best == LARGE_CACHE_COUNT || (fits && (!best_fits || have < best_have)) ||
            (!fits && !best_fits && have > best_have)) {
            best = i;
        }
    }
    if (best == LARGE_CACHE_COUNT) {
        return false;
    }
    *out = large_cache[best];
    large_cache_bytes -= out->map_size;
    memmove(&large_cache[best], &large_cache[best + 1], (--large_cache_count - best) * sizeof(large_block));
    large_cache_hits++;
    return true;
}

/* Makes the cached mapping b fit want bytes: kept whole up to twice want,
 * else its tail unmapped; grown with mremap when smaller (its pages move
 * with it, so only the new ones fault in). false (b unmapped) when mremap
 * fails. */
static bool large_cache_fit(large_block *b, size_t want)
{
    if (b->map_size / 2 > want) {
        os_unmap(b->base + want, b->map_size - want);
        b->map_size = want;
    } else if (b->map_size < want) {
        void *moved = mremap(b->base, b->map_size, want, MREMAP_MAYMOVE);
        if (moved == MAP_FAILED) {
            os_unmap(b->base, b->map_size);
            return false;
        }
        count_mapped(want - b->map_size);
        b->base = moved;
        b->map_size = want;
    }
    return true;
}

/* A large block of size bytes aligned to align; *fresh says whether its
 * memory is newly mapped (so zero). */
static void *large_alloc(size_t size, size_t align, bool *fresh)
{
    size_t page_size = os_page_size();
    if (align < page_size) {
        align = page_size;
    }
    size_t map_size;
    if (pk__round_up_overflows(size, page_size, &map_size) || map_size > PTRDIFF_MAX) {
        return NULL;
    }
    large_block b = {NULL, map_size};
    if (align == page_size) {
        (void)pthread_mutex_lock(&large_lock);
        bool cached = large_cache_take(map_size, &b);
        (void)pthread_mutex_unlock(&large_lock);
        if (cached && !large_cache_fit(&b, map_size)) {
            b.base = NULL;
        }
    }
    *fresh = b.base == NULL;
    if (b.base == NULL) {
        b.base = align == page_size ? os_map(map_size) : os_map_aligned(map_size, align);
        if (b.base == NULL) {
            return NULL;
        }
    }
    (void)pthread_mutex_lock(&large_lock);
    bool recorded = large_insert(&b);
    if (recorded) {
        large_allocs++;
    }
    (void)pthread_mutex_unlock(&large_lock);
    if (!recorded) {
        os_unmap(b.base, b.map_size);
        return NULL;
    }
    return b.base;
}

/* Frees ptr if it is a live large block: true then. */
static bool large_free(void *ptr)
{
    (void)pthread_mutex_lock(&large_lock);
    large_block *entry = large_find(ptr);
    if (entry == NULL) {
        (void)pthread_mutex_unlock(&large_lock);
        return false;
    }
    large_block b = *entry;
    large_remove(entry);
    large_frees++;
    large_block evicted = {NULL, 0};
    size_t limit = large_peak_bytes / 2 > LARGE_CACHE_MIN_BYTES ? large_peak_bytes / 2 : LARGE_CACHE_MIN_BYTES;
    if (b.map_size <= limit) {
        while (large_cache_count > 0 &&
               (large_cache_count == LARGE_CACHE_COUNT || large_cache_bytes + b.map_size > limit) &&
               evicted.base == NULL) {
            /* The oldest goes: one munmap per free at most, outside the lock. */
            evicted = large_cache[0];
            large_cache_bytes -= evicted.map_size;
            memmove(&large_cache[0], &large_cache[1], --large_cache_count * sizeof(large_block));
        }
        if (large_cache_count < LARGE_CACHE_COUNT && large_cache_bytes + b.map_size <= limit) {
            large_cache[large_cache_count++] = b;
            large_cache_bytes += b.map_size;
            b.base = NULL;
        }
    }
    (void)pthread_mutex_unlock(&large_lock);
    if (evicted.base != NULL) {
        os_unmap(evicted.base, evicted.map_size);
    }
    if (b.base != NULL) {
        os_unmap(b.base, b.map_size);
    }
    return true;
}

/* The usable bytes of a live large block, or 0 when ptr is not one. */
static size_t large_usable(const void *ptr)
{
    (void)pthread_mutex_lock(&large_lock);
    const large_block *entry = large_find(ptr);
    size_t usable = entry != NULL ? entry->map_size : 0;
    (void)pthread_mutex_unlock(&large_lock);
    return usable;
}

/* Grows or shrinks a large block with mremap; NULL (ptr kept) when that is
 * not possible. */
static void *large_resize(void *ptr, size_t size)
{
    size_t map_size;
    if (pk__round_up_overflows(size, os_page_size(), &map_size) || map_size > PTRDIFF_MAX) {
        return NULL;
    }
    (void)pthread_mutex_lock(&large_lock);
    large_block *entry = large_find(ptr);
    void *moved = NULL;
    if (entry != NULL) {
        large_block b = *entry;
        moved = mremap(b.base, b.map_size, map_size, MREMAP_MAYMOVE);
        if (moved == MAP_FAILED) {
            moved = NULL;
        } else {
            large_remove(entry);
            if (map_size > b.map_size) {
                count_mapped(map_size - b.map_size);
            } else {
                atomic_fetch_sub_explicit(&mapped_bytes, b.map_size - map_size, memory_order_relaxed);
            }
            b.base = moved;
            b.map_size = map_size;
            (void)large_insert(&b); /* a slot was just freed: it cannot fail */
        }
    }
    (void)pthread_mutex_unlock(&large_lock);
    return moved;
}

/* ---- The calls ------------------------------------------------------------ */

static inline thread_heap *current_heap(void)
{
    thread_heap *h = my_heap;
    if (LIKELY(h != NULL)) {
        return h;
    }
    return in_setup ? NULL : heap_acquire();
}

static void *fail_enomem(void)
{
    atomic_fetch_add_explicit(&enomem_count, 1, memory_order_relaxed);
    errno = ENOMEM;
    return NULL;
}

/* A block of size bytes aligned to align (a power of two); *fresh (when not
 * NULL) tells whether it is known to be zero. */
static void *allocate(size_t size, size_t align, bool *fresh)
{
    if (fresh != NULL) {
        *fresh = false;
    }
    /* glibc's bound: a block and its alignment padding must fit ptrdiff_t
     * (on 32-bit targets, a 2 GiB alignment fails even for 1 byte). */
    if (UNLIKELY(align > (size_t)PTRDIFF_MAX || size > (size_t)PTRDIFF_MAX - align)) {
        return fail_enomem();
    }
    thread_heap *h = current_heap();
    if (UNLIKELY(h == NULL)) {
        void *block = bootstrap_alloc(size, align);
        return block != NULL ? block : fail_enomem();
    }
    void *block = NULL;
    if (align <= MIN_ALIGN && size <= SMALL_MAX) {
        block = small_alloc(h, class_of(size));
    } else if (!PK_DEBUG && size <= SMALL_MAX && align <= SMALL_MAX) {
        /* Blocks of a class whose size is a multiple of align are aligned:
         * pages are, and blocks lie at multiples of the class size. */
        unsigned cls = class_of(size > align ? size : align);
        while (cls < CLASS_COUNT && class_size[cls] % align != 0) {
            cls++;
        }
        block = cls < CLASS_COUNT ? small_alloc(h, cls) : medium_alloc(size, align);
    } else if (size <= MEDIUM_MAX && align <= MEDIUM_ALIGN_MAX) {
        block = medium_alloc(size, align);
    } else {
        bool mapped = false;
        block = large_alloc(size, align, &mapped);
        if (fresh != NULL) {
            *fresh = mapped;
        }
    }
    return block != NULL ? block : fail_enomem();
}

/* The usable size of a block of ours, glibc's or the bootstrap's. */
static size_t usable_size(void *ptr, chunk *c)
{
    if (c != NULL) {
        if (c->kind == CHUNK_SMALL) {
            /* The page's class, set before any of its blocks was handed out:
             * the pool itself may be changing in its owner's thread. */
            small_chunk *sc = (small_chunk *)(void *)c;
            return class_size[sc->pages[((uintptr_t)ptr - (uintptr_t)sc) >> PAGE_SHIFT].size_class];
        }
        if (c->kind != CHUNK_MEDIUM) {
            return 0;
        }
        (void)pthread_mutex_lock(&medium_arena.lock);
        size_t usable = pk_heap_usable_size(chunk_heap(c), ptr);
        (void)pthread_mutex_unlock(&medium_arena.lock);
        return usable;
    }
    if (in_bootstrap(ptr)) {
        return bootstrap_size(ptr);
    }
    size_t usable = large_usable(ptr);
    if (usable == 0) {
        bool nested = in_setup;
        in_setup = true;
        (void)pthread_once(&setup_once, setup_process);
        in_setup = nested;
        usable = libc_usable_size != NULL ? libc_usable_size(ptr) : 0;
    }
    return usable;
}

void *PKM_API(malloc)(size_t size)
{
    thread_heap *h = my_heap;
    if (LIKELY(h != NULL && size <= SMALL_MAX)) {
        return small_alloc(h, class_of(size));
    }
    return allocate(size, MIN_ALIGN, NULL);
}

static PK__SLOW_PATH void free_outside_chunks(void *ptr)
{
    if (in_bootstrap(ptr) || large_free(ptr)) {
        return;
    }
    atomic_fetch_add_explicit(&foreign_frees, 1, memory_order_relaxed);
    __libc_free(ptr);
}

static PK__SLOW_PATH void free_in_other_chunk(chunk *c, void *ptr)
{
    if (c->kind == CHUNK_MEDIUM) {
        medium_free(c, ptr);
    } else {
        /* No block of the chunk is live: ptr was freed already. */
        (void)pk_report_fault(PK_ERR_DOUBLE_FREE, "malloc", ptr);
    }
}

void PKM_API(free)(void *ptr)
{
    chunk *c = chunk_of(ptr);
    if (LIKELY(c != NULL && c->kind == CHUNK_SMALL)) {
        thread_heap *owner = c->owner;
        if (LIKELY(owner == my_heap)) {
            small_free_local(owner, (small_chunk *)(void *)c, ptr);
        } else {
            remote_free(owner, ptr);
        }
    } else if (c != NULL) {
        free_in_other_chunk(c, ptr);
    } else if (ptr != NULL) {
        free_outside_chunks(ptr);
    }
}

void *PKM_API(calloc)(size_t count, size_t size) /* NOLINT(readability-inconsistent-declaration-parameter-name): glibc's are reserved names */
{
    size_t total;
    if (pk__mul_overflows(count, size, &total)) {
        return fail_enomem();
    }
    bool fresh;
    void *block = allocate(total, MIN_ALIGN, &fresh);
    if (block != NULL && !fresh) {
        memset(block, 0, total);
    }
    return block;
}

void *PKM_API(realloc)(void *ptr, size_t size)
{
    if (ptr == NULL) {
        return allocate(size, MIN_ALIGN, NULL);
    }
    if (size == 0) {
        PKM_API(free)(ptr);
        return NULL;
    }
    chunk *c = chunk_of(ptr);
    size_t old_size;
    if (c != NULL) {
        old_size = usable_size(ptr, c);
        if (c->kind == CHUNK_SMALL) {
            if (size <= old_size && size > old_size / 2) {
                return ptr;
            }
        } else if (c->kind == CHUNK_MEDIUM && size > SMALL_MAX && size <= MEDIUM_MAX) {
            void *resized = medium_resize(c, ptr, size);
            if (resized != NULL) {
                return resized;
            }
        }
    } else if (in_bootstrap(ptr)) {
        old_size = bootstrap_size(ptr);
    } else if ((old_size = large_usable(ptr)) != 0) {
        if (size > MEDIUM_MAX) {
            void *resized = large_resize(ptr, size);
            if (resized != NULL) {
                return resized;
            }
        }
    } else {
        return __libc_realloc(ptr, size);
    }
    void *fresh = allocate(size, MIN_ALIGN, NULL);
    if (fresh != NULL) {
        memcpy(fresh, ptr, old_size < size ? old_size : size);
        PKM_API(free)(ptr);
    }
    return fresh;
}

void *PKM_API(reallocarray)(void *ptr, size_t count, size_t size) /* NOLINT(readability-inconsistent-declaration-parameter-name): glibc's are reserved names */
{
    size_t total;
    if (pk__mul_overflows(count, size, &total)) {
        return fail_enomem();
    }
    return PKM_API(realloc)(ptr, total);
}

/* memalign's alignment rule (glibc 2.36): below MIN_ALIGN is MIN_ALIGN, a
 * non-power of two is rounded up to one, beyond half the address space is
 * EINVAL. */
static void *aligned_any(size_t align, size_t size)
{
    if (align > SIZE_MAX / 2 + 1) {
        errno = EINVAL;
        return NULL;
    }
    if (align < MIN_ALIGN) {
        align = MIN_ALIGN;
    }
    if (!pk__is_pow2(align)) {
        align = (size_t)1 << (pk__log2_floor(align) + 1);
    }
    return allocate(size, align, NULL);
}

int PKM_API(posix_memalign)(void **out, size_t align, size_t size) /* NOLINT(readability-inconsistent-declaration-parameter-name): glibc's are reserved names */
{
    if (align < sizeof(void *) || !pk__is_pow2(align)) {
        return EINVAL;
    }
    int saved = errno;
    void *block = allocate(size, align < MIN_ALIGN ? MIN_ALIGN : align, NULL);
    errno = saved;
    if (block == NULL) {
        return ENOMEM;
    }
    *out = block;
    return 0;
}

void *PKM_API(aligned_alloc)(size_t align, size_t size) /* NOLINT(readability-inconsistent-declaration-parameter-name): glibc's are reserved names */
{
    return aligned_any(align, size);
}

void *PKM_API(memalign)(size_t align, size_t size)
{
    return aligned_any(align, size);
}

void *PKM_API(valloc)(size_t size)
{
    return aligned_any(os_page_size(), size);
}

void *PKM_API(pvalloc)(size_t size)
{
    size_t rounded;
    if (pk__round_up_overflows(size == 0 ? 1 : size, os_page_size(), &rounded)) {
        return fail_enomem();
    }
    return aligned_any(os_page_size(), rounded);
}

size_t PKM_API(malloc_usable_size)(void *ptr)
{
    return ptr == NULL ? 0 : usable_size(ptr, chunk_of(ptr));
}

/* ---- Invariants ------------------------------------------------------------- */

/* The problems found in a chunk set of the kind, owned by owner: each chunk
 * of its lists of that kind (or empty), owned, in the chunk map, linked both
 * ways; the empty chunks counted. O(chunks). */
static unsigned chunk_set_check(const chunk_set *set, unsigned kind, const thread_heap *owner)
{
    unsigned problems = 0;
    for (const chunk *c = set->in_use; c != NULL; c = c->next) {
        problems += c->kind != kind || c->owner != owner || chunk_of(c) != c ||
                    (c->next != NULL && c->next->prev != c);
    }
    unsigned empty = 0;
    for (const chunk *c = set->empty; c != NULL && empty <= EMPTY_CHUNKS_KEPT; c = c->next) {
        problems += c->kind != CHUNK_EMPTY || chunk_of(c) != c;
        empty++;
    }
    return problems + (empty != set->empty_count || empty > EMPTY_CHUNKS_KEPT);
}

/* The problems found in h: its chunk set's; each page's state agreeing with
 * its chunk's page bitmap and its class's lists (one current page, partial
 * pages with both live and free blocks, full pages with no free block), and
 * its pool's own check; no chunk without a page in use. h must be quiescent
 * (its thread stopped or exiting). O(blocks of h). */
static unsigned heap_check(const thread_heap *h)
{
    unsigned problems = chunk_set_check(&h->chunks, CHUNK_SMALL, h);
    size_t current_pages[CLASS_COUNT] = {0}, partial_pages[CLASS_COUNT] = {0};
    for (const chunk *c = h->chunks.in_use; c != NULL; c = c->next) {
        const small_chunk *sc = (const small_chunk *)(const void *)c;
        problems += (sc->free_pages & ~(~(uint64_t)0 << HEADER_PAGES)) != 0 ||
                    sc->free_pages == ~(uint64_t)0 << HEADER_PAGES;
        for (size_t i = HEADER_PAGES; i < PAGES_PER_CHUNK; i++) {
            const page *pg = &sc->pages[i];
            bool unused = (sc->free_pages >> i & 1u) != 0;
            if (unused != (pg->state == PAGE_UNUSED)) {
                problems++;
                continue;
            }
            if (unused) {
                continue;
            }
            size_t available = pk_pool_available(&pg->pool);
            problems += pg->size_class >= CLASS_COUNT || pk_pool_check(&pg->pool) != PK_OK ||
                        pg->pool.block_size != class_size[pg->size_class % CLASS_COUNT] ||
                        (pg->state == PAGE_FULL && available != 0) ||
                        (pg->state == PAGE_PARTIAL && (available == 0 || page_live(pg) == 0));
            current_pages[pg->size_class % CLASS_COUNT] += pg->state == PAGE_CURRENT;
            partial_pages[pg->size_class % CLASS_COUNT] += pg->state == PAGE_PARTIAL;
        }
    }
    for (unsigned cls = 0; cls < CLASS_COUNT; cls++) {
        const size_class_state *cs = &h->classes[cls];
        bool has_current = cs->current != &no_page;
        problems += current_pages[cls] != (has_current ? 1u : 0u) ||
                    (has_current && (cs->current->state != PAGE_CURRENT || cs->current->size_class != cls));
        size_t listed = 0;
        for (const page *pg = cs->partial; pg != NULL && listed <= partial_pages[cls]; pg = pg->next) {
            problems += pg->state != PAGE_PARTIAL || pg->size_class != cls ||
                        (pg->next != NULL && pg->next->prev != pg);
            listed++;
        }
        problems += listed != partial_pages[cls];
    }
    return problems;
}

/* The problems found in the medium arena: its chunk set's, each chunk's heap
 * check, its current chunk one of its chunks. Under the arena's lock. */
static unsigned medium_arena_check(void)
{
    unsigned problems = chunk_set_check(&medium_arena.chunks, CHUNK_MEDIUM, NULL);
    bool current_found = medium_arena.current == NULL;
    for (chunk *c = medium_arena.chunks.in_use; c != NULL; c = c->next) {
        problems += pk_heap_check(chunk_heap(c)) != PK_OK;
        current_found = current_found || c == medium_arena.current;
    }
    return problems + !current_found;
}

/* ---- Statistics at exit --------------------------------------------------- */

typedef struct {
    char text[8192];
    size_t length;
} report;

static void put(report *r, const char *s)
{
    size_t n = strlen(s);
    if (n > sizeof r->text - r->length) {
        n = sizeof r->text - r->length;
    }
    memcpy(r->text + r->length, s, n);
    r->length += n;
}

static void put_u64(report *r, uint64_t v)
{
    char digits[24];
    size_t n = sizeof digits;
    digits[--n] = '\0';
    do {
        digits[--n] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    put(r, digits + n);
}

/* bytes as mebibytes with one decimal. */
static void put_mib(report *r, uint64_t bytes)
{
    uint64_t tenths = (bytes * 10 + (1u << 19)) >> 20;
    put_u64(r, tenths / 10);
    put(r, ".");
    put_u64(r, tenths % 10);
    put(r, " MiB");
}

static void flush(report *r)
{
    pk__write_all(report_fd, r->text, r->length);
    r->length = 0;
}

typedef struct {
    uint64_t pages, live, allocs, rejected;
} class_totals;

/* POOLKIT_MALLOC_CHECK's verdict: heap_check on every heap that is quiescent
 * (this thread's and those abandoned: a thread still running at exit may be
 * changing its own). */
static void print_check(void)
{
    static report r;
    uint64_t checked = 0, skipped = 0, problems = 0;
    (void)pthread_mutex_lock(&registry_lock);
    for (thread_heap *h = all_heaps; h != NULL; h = h->next_all) {
        if (h == my_heap || h->state == HEAP_ABANDONED) {
            problems += heap_check(h);
            checked++;
        } else {
            skipped++;
        }
    }
    (void)pthread_mutex_unlock(&registry_lock);
    (void)pthread_mutex_lock(&medium_arena.lock);
    problems += medium_arena_check();
    (void)pthread_mutex_unlock(&medium_arena.lock);
    put(&r, "poolkit-malloc check (pid ");
    put_u64(&r, (uint64_t)getpid());
    put(&r, "): ");
    put_u64(&r, checked);
    put(&r, " thread heaps and the medium arena checked, ");
    put_u64(&r, skipped);
    put(&r, problems == 0 ? " heaps in use elsewhere: ok\n" : " heaps in use elsewhere: FAILED, problems ");
    if (problems != 0) {
        put_u64(&r, problems);
        put(&r, "\n");
    }
    flush(&r);
}

static void print_stats(void)
{
    static report r;
    static class_totals classes[CLASS_COUNT];
    uint64_t heaps = 0, owned = 0, small_chunks = 0, medium_chunks = 0, remote = 0;
    uint64_t mapped = 0, unmapped = 0;
    pk_stats medium = {0};
    (void)pthread_mutex_lock(&registry_lock);
    for (thread_heap *h = all_heaps; h != NULL; h = h->next_all) {
        heaps++;
        owned += h->state == HEAP_OWNED;
        remote += h->remote_drained;
        mapped += h->chunks.mapped;
        unmapped += h->chunks.unmapped;
        for (chunk *c = h->chunks.in_use; c != NULL; c = c->next) {
            small_chunk *sc = (small_chunk *)(void *)c;
            small_chunks++;
            for (size_t i = HEADER_PAGES; i < PAGES_PER_CHUNK; i++) {
                if ((sc->free_pages >> i & 1u) == 0) {
                    pk_stats s;
                    pk_pool_stats(&sc->pages[i].pool, &s);
                    class_totals *t = &classes[sc->pages[i].size_class];
                    t->pages++;
                    t->live += s.live;
                    t->allocs += s.allocs;
                    t->rejected += s.rejected;
                }
            }
        }
    }
    (void)pthread_mutex_unlock(&registry_lock);
    (void)pthread_mutex_lock(&medium_arena.lock);
    for (chunk *c = medium_arena.chunks.in_use; c != NULL; c = c->next) {
        pk_stats s;
        pk_heap_stats(chunk_heap(c), &s);
        medium_chunks++;
        medium.live += s.live;
        medium.allocs += s.allocs;
        medium.in_use += s.in_use;
        medium.peak_in_use += s.peak_in_use;
        medium.rejected += s.rejected;
    }
    mapped += medium_arena.chunks.mapped;
    unmapped += medium_arena.chunks.unmapped;
    (void)pthread_mutex_unlock(&medium_arena.lock);

    put(&r, "poolkit-malloc stats (pid ");
    put_u64(&r, (uint64_t)getpid());
    put(&r, "): ");
    put_u64(&r, heaps);
    put(&r, " thread heaps (");
    put_u64(&r, owned);
    put(&r, " in use), mapped now ");
    put_mib(&r, atomic_load_explicit(&mapped_bytes, memory_order_relaxed));
    put(&r, ", peak ");
    put_mib(&r, atomic_load_explicit(&mapped_peak, memory_order_relaxed));
    put(&r, "\n  small (size classes, pk_pool pages of 64 KiB): ");
    put_u64(&r, small_chunks);
    put(&r, " chunks\n");
    for (unsigned c = 0; c < CLASS_COUNT; c++) {
        if (classes[c].allocs == 0 && classes[c].pages == 0) {
            continue;
        }
        put(&r, "    class ");
        put_u64(&r, class_size[c]);
        put(&r, " B: pages ");
        put_u64(&r, classes[c].pages);
        put(&r, ", live ");
        put_u64(&r, classes[c].live);
        put(&r, ", allocs on these pages ");
        put_u64(&r, classes[c].allocs);
        if (classes[c].rejected != 0) {
            put(&r, ", rejected frees ");
            put_u64(&r, classes[c].rejected);
        }
        put(&r, "\n");
    }
    put(&r, "  medium (one arena, a pk_heap per 4 MiB chunk, to ");
    put_u64(&r, MEDIUM_MAX / 1024);
    put(&r, " KiB): ");
    put_u64(&r, medium_chunks);
    put(&r, " chunks, live ");
    put_u64(&r, medium.live);
    put(&r, " blocks, ");
    put_mib(&r, medium.in_use);
    put(&r, " in use, allocs ");
    put_u64(&r, medium.allocs);
    put(&r, ", sum of chunk peaks ");
    put_mib(&r, medium.peak_in_use);
    if (medium.rejected != 0) {
        put(&r, ", rejected frees ");
        put_u64(&r, medium.rejected);
    }
    (void)pthread_mutex_lock(&large_lock);
    put(&r, "\n  large (mmap): allocs ");
    put_u64(&r, large_allocs);
    put(&r, ", frees ");
    put_u64(&r, large_frees);
    put(&r, ", live ");
    put_mib(&r, large_live_bytes);
    put(&r, ", peak ");
    put_mib(&r, large_peak_bytes);
    put(&r, ", reused from the cache ");
    put_u64(&r, large_cache_hits);
    (void)pthread_mutex_unlock(&large_lock);
    put(&r, "\n  chunks mapped ");
    put_u64(&r, mapped);
    put(&r, ", unmapped ");
    put_u64(&r, unmapped);
    put(&r, "; frees from other threads ");
    put_u64(&r, remote);
    put(&r, "; bootstrap ");
    put_u64(&r, atomic_load_explicit(&bootstrap_used, memory_order_relaxed));
    put(&r, " B; glibc pointers freed ");
    put_u64(&r, atomic_load_explicit(&foreign_frees, memory_order_relaxed));
    put(&r, "; ENOMEM ");
    put_u64(&r, atomic_load_explicit(&enomem_count, memory_order_relaxed));
    put(&r, "\n");
    flush(&r);
}

static void __attribute__((destructor)) report_at_exit(void)
{
    if (check_at_exit) {
        print_check();
    }
    if (stats_at_exit) {
        print_stats();
    }
}
