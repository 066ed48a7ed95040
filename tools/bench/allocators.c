/*
 * The allocators `poolkit bench` compares, each behind alloc(self, size) and
 * release(self, p) (see bench.h): poolkit's, made afresh over the caller's
 * buffer before every pass, and the mallocs: the process's own (glibc's) and
 * jemalloc, mimalloc and tcmalloc loaded with dlopen(RTLD_NOW | RTLD_LOCAL)
 * by soname. RTLD_LOCAL keeps their symbols out of the global scope, so the
 * process's malloc stays glibc's: only the calls made through the pointers
 * dlsym returned reach them, and only blocks they handed out go back to them.
 * Libraries stay loaded until exit (tcmalloc cannot be unloaded safely).
 */
#define _POSIX_C_SOURCE 200809L
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

#include "poolkit/atomic_pool.h"
#include "poolkit/buddy.h"
#include "poolkit/classes.h"
#include "poolkit/fit.h"
#include "poolkit/heap.h"
#include "poolkit/pool.h"
#include "poolkit/slab.h"

#define SLAB_SIZE 4096u
#define BUDDY_MIN_BLOCK 16u
#define SMALLEST_CLASS 16u

/* ---- The harness: no allocator at all ------------------------------------ */

/* alloc hands out the buffer's first bytes over and over, free does nothing:
 * what remains is the loop, the calls through the pointers and the timer,
 * subtracted from every other allocator's figures. */
static void *null_alloc(void *self, size_t size)
{
    (void)size;
    return self;
}
static void null_release(void *self, void *p)
{
    (void)self;
    (void)p;
}
static int null_setup(bench_allocator *a, void *buf, size_t size, const bench_need *need)
{
    (void)size;
    (void)need;
    a->self = buf;
    return 0;
}

/* ---- poolkit ------------------------------------------------------------- */

static int setup_failed(const bench_allocator *a, pk_status s, size_t size)
{
    fprintf(stderr, "poolkit bench: %s: init over %zu bytes failed: %s\n", a->name, size,
            pk_status_str(s));
    return -1;
}

/* After a pass, every object freed: the allocator's check passes and it
 * holds no live object. */
static int verified(const bench_allocator *a, pk_status check, const pk_stats *st)
{
    if (check != PK_OK) {
        fprintf(stderr, "poolkit bench: %s: check after the pass: %s\n", a->name, pk_status_str(check));
        return -1;
    }
    if (st->live != 0 || st->failures != 0 || st->rejected != 0) {
        fprintf(stderr, "poolkit bench: %s: after the pass: %zu live, %llu failures, %llu rejected\n",
                a->name, st->live, (unsigned long long)st->failures, (unsigned long long)st->rejected);
        return -1;
    }
    return 0;
}

static pk_pool pool;
static int pool_setup(bench_allocator *a, void *buf, size_t size, const bench_need *need)
{
    pk_status s = pk_pool_init(&pool, buf, size, need->fixed_size, 0);
    a->self = &pool;
    return s == PK_OK ? 0 : setup_failed(a, s, size);
}
static void *pool_alloc(void *self, size_t size)
{
    (void)size;
    return pk_pool_alloc(self);
}
static void pool_release(void *self, void *p) { (void)pk_pool_free(self, p); }
static int pool_verify(bench_allocator *a)
{
    pk_stats st;
    pk_pool_stats(&pool, &st);
    return verified(a, pk_pool_check(&pool), &st);
}

static pk_atomic_pool atomic_pool;
static int atomic_setup(bench_allocator *a, void *buf, size_t size, const bench_need *need)
{
    pk_status s = pk_atomic_pool_init(&atomic_pool, buf, size, need->fixed_size, 0);
    a->self = &atomic_pool;
    return s == PK_OK ? 0 : setup_failed(a, s, size);
}
static void *atomic_alloc(void *self, size_t size)
{
    (void)size;
    return pk_atomic_pool_alloc(self);
}
static void atomic_release(void *self, void *p) { (void)pk_atomic_pool_free(self, p); }
static int atomic_verify(bench_allocator *a)
{
    pk_stats st;
    pk_atomic_pool_stats(&atomic_pool, &st);
    return verified(a, pk_atomic_pool_check(&atomic_pool), &st);
}

/* pk_classes: power-of-two classes from 16 B to the workload's largest size.
 * For one fixed size, that size's class holds the whole live set and the
 * others 64 blocks each; for sizes log-uniform over [min, max] (a size is
 * round(2^u), u uniform), each class holds 1.25 times its expected share of
 * the live set, plus 64, and fall-through covers the rest. */
static size_t classes_specs(const bench_need *need, pk_class_spec *specs)
{
    size_t n = 0;
    double lo = log2((double)need->min_size), hi = log2((double)need->max_size);
    double below = lo;
    for (size_t block = SMALLEST_CLASS; n < PK_CLASSES_MAX; block *= 2) {
        size_t count = 64;
        if (need->fixed_size != 0) {
            if (need->fixed_size <= block && (n == 0 || need->fixed_size > block / 2)) {
                count += need->max_live;
            }
        } else {
            double above = log2((double)block + 0.5);
            if (above > hi) {
                above = hi;
            }
            double share = above > below ? (above - below) / (hi - lo) : 0.0;
            count += (size_t)(1.25 * share * (double)need->max_live);
            below = above;
        }
        specs[n++] = (pk_class_spec){block, count, 0};
        if (block >= need->max_size) {
            break;
        }
    }
    return n;
}
static pk_classes classes;
static int classes_setup(bench_allocator *a, void *buf, size_t size, const bench_need *need)
{
    pk_class_spec specs[PK_CLASSES_MAX];
    size_t n = classes_specs(need, specs);
    pk_status s = pk_classes_init(&classes, buf, size, specs, n);
    a->self = &classes;
    return s == PK_OK ? 0 : setup_failed(a, s, size);
}
static void *classes_alloc(void *self, size_t size) { return pk_classes_alloc(self, size); }
static void classes_release(void *self, void *p) { (void)pk_classes_free(self, p); }
static int classes_verify(bench_allocator *a)
{
    pk_stats st;
    pk_classes_stats(&classes, &st);
    return verified(a, pk_classes_check(&classes), &st);
}

/* pk_slab: a cache of the fixed size on 4 KiB slabs, taken from a pk_buddy
 * over the buffer (aligned to 64 KiB by the caller, so slabs are aligned). */
static pk_buddy slab_pages;
static pk_slab_cache slab;
static int slab_setup(bench_allocator *a, void *buf, size_t size, const bench_need *need)
{
    pk_status s = pk_buddy_init(&slab_pages, buf, size, SLAB_SIZE);
    if (s == PK_OK) {
        pk_page_source src = pk_page_source_buddy(&slab_pages);
        s = pk_slab_init(&slab, "pk_slab", need->fixed_size, 0, NULL, NULL, NULL, &src, SLAB_SIZE);
    }
    a->self = &slab;
    return s == PK_OK ? 0 : setup_failed(a, s, size);
}
static void *slab_alloc(void *self, size_t size)
{
    (void)size;
    return pk_slab_alloc(self);
}
static void slab_release(void *self, void *p) { (void)pk_slab_free(self, p); }
static int slab_verify(bench_allocator *a)
{
    pk_stats st;
    pk_slab_stats(&slab, &st);
    if (verified(a, pk_slab_check(&slab), &st) != 0) {
        return -1;
    }
    (void)pk_slab_shrink(&slab);
    pk_buddy_stats(&slab_pages, &st);
    return verified(a, pk_buddy_check(&slab_pages), &st);
}

static pk_heap heap;
static int heap_setup(bench_allocator *a, void *buf, size_t size, const bench_need *need)
{
    (void)need;
    pk_status s = pk_heap_init(&heap, buf, size);
    a->self = &heap;
    return s == PK_OK ? 0 : setup_failed(a, s, size);
}
static void *heap_alloc(void *self, size_t size) { return pk_heap_alloc(self, size); }
static void heap_release(void *self, void *p) { (void)pk_heap_free(self, p); }
static int heap_verify(bench_allocator *a)
{
    pk_stats st;
    pk_heap_stats(&heap, &st);
    return verified(a, pk_heap_check(&heap), &st);
}

static pk_fit fit;
static int fit_setup(bench_allocator *a, void *buf, size_t size, pk_fit_policy policy)
{
    pk_status s = pk_fit_init(&fit, buf, size, policy, 0);
    a->self = &fit;
    return s == PK_OK ? 0 : setup_failed(a, s, size);
}
static int fit_first_setup(bench_allocator *a, void *buf, size_t size, const bench_need *need)
{
    (void)need;
    return fit_setup(a, buf, size, PK_FIT_FIRST);
}
static int fit_best_setup(bench_allocator *a, void *buf, size_t size, const bench_need *need)
{
    (void)need;
    return fit_setup(a, buf, size, PK_FIT_BEST);
}
static int fit_next_setup(bench_allocator *a, void *buf, size_t size, const bench_need *need)
{
    (void)need;
    return fit_setup(a, buf, size, PK_FIT_NEXT);
}
static void *fit_alloc(void *self, size_t size) { return pk_fit_alloc(self, size); }
static void fit_release(void *self, void *p) { (void)pk_fit_free(self, p); }
static int fit_verify(bench_allocator *a)
{
    pk_stats st;
    pk_fit_stats(&fit, &st);
    return verified(a, pk_fit_check(&fit), &st);
}

static pk_buddy buddy;
static int buddy_setup(bench_allocator *a, void *buf, size_t size, const bench_need *need)
{
    (void)need;
    pk_status s = pk_buddy_init(&buddy, buf, size, BUDDY_MIN_BLOCK);
    a->self = &buddy;
    return s == PK_OK ? 0 : setup_failed(a, s, size);
}
static void *buddy_alloc(void *self, size_t size) { return pk_buddy_alloc(self, size); }
static void buddy_release(void *self, void *p) { (void)pk_buddy_free(self, p); }
static int buddy_verify(bench_allocator *a)
{
    pk_stats st;
    pk_buddy_stats(&buddy, &st);
    return verified(a, pk_buddy_check(&buddy), &st);
}

/* ---- The mallocs ------------------------------------------------------------ */

static int malloc_setup(bench_allocator *a, void *buf, size_t size, const bench_need *need)
{
    (void)buf;
    (void)size;
    (void)need;
    a->self = a;
    return 0;
}
static void *malloc_alloc(void *self, size_t size) { return ((bench_allocator *)self)->malloc_fn(size); }
static void malloc_release(void *self, void *p) { ((bench_allocator *)self)->free_fn(p); }

/* ---- The table ------------------------------------------------------------ */

#define POOLKIT(label, text, prefix, fixed)                                                        \
    {.name = label, .what = text, .poolkit = true, .fixed_only = fixed, .setup = prefix##_setup,  \
     .verify = prefix##_verify, .alloc = prefix##_alloc, .release = prefix##_release}
#define FIT(label, text, policy)                                                                   \
    {.name = label, .what = text, .poolkit = true, .setup = fit_##policy##_setup,                 \
     .verify = fit_verify, .alloc = fit_alloc, .release = fit_release}
#define MALLOC(label, text)                                                                        \
    {.name = label, .what = text, .setup = malloc_setup, .alloc = malloc_alloc,                   \
     .release = malloc_release}

bench_allocator bench_allocators[] = {
    {.name = "null", .what = "the harness: no allocator", .hidden = true, .setup = null_setup,
     .alloc = null_alloc, .release = null_release},
    POOLKIT("pk_pool", "fixed-size block pool of the workload's size", pool, true),
    POOLKIT("pk_atomic_pool", "lock-free fixed-size pool (uncontended here)", atomic, true),
    POOLKIT("pk_slab", "slab cache of the workload's size, 4 KiB slabs from a pk_buddy", slab, true),
    POOLKIT("pk_classes", "size-class set: power-of-two pools from 16 B, fall-through on", classes, false),
    POOLKIT("pk_heap", "O(1) two-level segregated fit heap", heap, false),
    FIT("pk_fit_first", "free-list heap, first fit", first),
    FIT("pk_fit_best", "free-list heap, best fit", best),
    FIT("pk_fit_next", "free-list heap, next fit", next),
    POOLKIT("pk_buddy", "buddy allocator, 16 B minimum block", buddy, false),
    MALLOC("glibc", "the process's malloc and free (glibc)"),
    MALLOC("jemalloc", "jemalloc (libjemalloc.so.2, dlopen)"),
    MALLOC("mimalloc", "mimalloc (libmimalloc.so.2, dlopen)"),
    MALLOC("tcmalloc", "tcmalloc (libtcmalloc_minimal.so.4, dlopen)"),
};
const size_t bench_allocator_count = sizeof bench_allocators / sizeof bench_allocators[0];

static size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }

size_t bench_buffer_size(const bench_allocator *a, const bench_need *need)
{
    if (!a->poolkit) {
        return a->hidden ? 4096 : 0;
    }
    if (a->setup == pool_setup) {
        return PK_POOL_BUFFER_SIZE(need->fixed_size, need->max_live, 0);
    }
    if (a->setup == atomic_setup) {
        return PK_ATOMIC_POOL_BUFFER_SIZE(need->fixed_size, need->max_live, 0);
    }
    if (a->setup == classes_setup) {
        pk_class_spec specs[PK_CLASSES_MAX];
        return pk_classes_buffer_size(specs, classes_specs(need, specs));
    }
    if (a->setup == slab_setup) {
        size_t per_slab = pk_slab_objects_per_slab(need->fixed_size, 0, SLAB_SIZE);
        size_t slabs = per_slab ? need->max_live / per_slab + 2 : 0;
        return PK_BUDDY_BUFFER_SIZE(2 * slabs * SLAB_SIZE, SLAB_SIZE);
    }
    /* Variable-size heaps and buddy: twice the most the live set can
     * request, each size rounded up to a power of two (buddy's blocks), plus
     * room for headers and the metadata. */
    size_t largest = 1;
    while (largest < need->max_size) {
        largest *= 2;
    }
    size_t bytes = 2 * need->max_live * (largest + 64) + (64u << 10);
    return round_up(bytes, 4096);
}

/* Function pointers from dlsym's object pointers, without the cast ISO C
 * leaves undefined (POSIX guarantees the representation). */
typedef void *(*malloc_type)(size_t);
typedef void (*free_type)(void *);
_Static_assert(sizeof(malloc_type) == sizeof(void *), "function and object pointers differ in size");

static void *symbol(void *handle, const char *name) { return handle ? dlsym(handle, name) : NULL; }

typedef enum { JEMALLOC, MIMALLOC, TCMALLOC } library;

static const char *library_version(library lib, void *handle)
{
    static char text[3][64];
    char *out = text[lib];
    out[0] = '\0';
    if (lib == JEMALLOC) {
        int (*mallctl)(const char *, void *, size_t *, void *, size_t);
        void *sym = symbol(handle, "mallctl");
        const char *version = NULL;
        size_t len = sizeof version;
        memcpy(&mallctl, &sym, sizeof sym);
        if (mallctl != NULL && mallctl("version", &version, &len, NULL, 0) == 0 && version != NULL) {
            snprintf(out, sizeof text[0], "%.*s", (int)strcspn(version, "-"), version); /* not "-0-g<hash>" */
        }
    } else if (lib == MIMALLOC) {
        int (*mi_version)(void);
        void *sym = symbol(handle, "mi_version");
        memcpy(&mi_version, &sym, sizeof sym);
        if (mi_version != NULL) {
            int v = mi_version();
            snprintf(out, sizeof text[0], "%d.%d.%d", v / 100, v / 10 % 10, v % 10);
        }
    } else {
        const char *(*tc_version)(int *, int *, const char **);
        void *sym = symbol(handle, "tc_version");
        int major, minor;
        const char *patch;
        memcpy(&tc_version, &sym, sizeof sym);
        if (tc_version != NULL) {
            const char *v = tc_version(&major, &minor, &patch);
            snprintf(out, sizeof text[0], "%.40s", v ? v : "");
        }
    }
    return out[0] ? out : NULL;
}

static void note(char *notes, size_t n, const char *text)
{
    size_t len = strlen(notes);
    snprintf(notes + len, n - len, "%s\n", text);
}

bool bench_static_tls_short;

bool bench_under_valgrind(void)
{
    const char *preload = getenv("LD_PRELOAD"); /* valgrind preloads its vgpreload_*.so */
    return preload != NULL && strstr(preload, "vgpreload") != NULL;
}

/* The process's malloc is not glibc's in a sanitizer build. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZER_MALLOC 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SANITIZER_MALLOC 1
#endif
#endif

size_t bench_load_mallocs(const bool *wanted, bool *missing, char *notes, size_t n)
{
    static const struct {
        library lib;
        const char *name, *soname, *malloc_name, *free_name, *proof;
    } libs[] = {
        /* jemalloc as Debian builds it exports malloc and free unprefixed;
         * mallctl proves the symbols found are jemalloc's. */
        {JEMALLOC, "jemalloc", "libjemalloc.so.2", "malloc", "free", "mallctl"},
        {MIMALLOC, "mimalloc", "libmimalloc.so.2", "mi_malloc", "mi_free", "mi_version"},
        {TCMALLOC, "tcmalloc", "libtcmalloc_minimal.so.4", "tc_malloc", "tc_free", "tc_version"},
    };
    void *process = dlopen(NULL, RTLD_NOW);
    void *process_malloc = symbol(process, "malloc");
    size_t loaded = 0;
    char text[512];

    for (size_t i = 0; i < bench_allocator_count; i++) {
        bench_allocator *a = &bench_allocators[i];
        if (strcmp(a->name, "glibc") == 0) {
            static char version[64];
            char v[32] = "";
            confstr(_CS_GNU_LIBC_VERSION, v, sizeof v);
            snprintf(version, sizeof version, "%s", v[0] ? v : "glibc");
            a->version = version;
            a->malloc_fn = malloc;
            a->free_fn = free;
#ifdef SANITIZER_MALLOC
            if (wanted[i]) {
                note(notes, n, "note: a sanitizer build: the glibc row measures the sanitizer's malloc");
            }
#endif
            if (wanted[i] && bench_under_valgrind()) {
                note(notes, n, "note: under valgrind: the glibc row measures valgrind's malloc");
            }
            /* A malloc preloaded into the process (LD_PRELOAD) would be
             * measured as "glibc": say so. */
            for (size_t k = 0; k < sizeof libs / sizeof libs[0]; k++) {
                if (wanted[i] && symbol(process, libs[k].proof) != NULL) {
                    snprintf(text, sizeof text, "note: the process's malloc is %s (preloaded?): the glibc "
                             "row measures it", libs[k].name);
                    note(notes, n, text);
                }
            }
            continue;
        }
        for (size_t k = 0; k < sizeof libs / sizeof libs[0]; k++) {
            if (strcmp(a->name, libs[k].name) != 0 || !wanted[i]) {
                continue;
            }
            if (bench_under_valgrind()) {
                /* memcheck follows glibc's malloc only: it would check these
                 * libraries' insides (tcmalloc's start-up loses a block),
                 * not ours, and time means nothing there. */
                snprintf(text, sizeof text, "note: %s skipped under valgrind (it checks glibc's malloc, "
                         "not a dlopened one)", a->name);
                note(notes, n, text);
                missing[i] = true;
                continue;
            }
            void *handle = dlopen(libs[k].soname, RTLD_NOW | RTLD_LOCAL);
            void *m = symbol(handle, libs[k].malloc_name), *f = symbol(handle, libs[k].free_name);
            const char *why = NULL;
            if (handle == NULL) {
                why = "could not be loaded";
            } else if (m == NULL || f == NULL || symbol(handle, libs[k].proof) == NULL) {
                why = "its entry points are missing";
            } else if (m == process_malloc) {
                why = "it is the process's own malloc (preloaded?), not a separate one";
            }
            if (why != NULL) {
                const char *error = handle == NULL ? dlerror() : NULL;
                if (error != NULL && strstr(error, "static TLS") != NULL) {
                    bench_static_tls_short = true;
                }
                snprintf(text, sizeof text, "note: %s skipped: %s %s%s%s", a->name, libs[k].soname, why,
                         error ? ": " : "", error ? error : "");
                note(notes, n, text);
                missing[i] = true;
                if (handle != NULL) {
                    dlclose(handle);
                }
                continue;
            }
            memcpy(&a->malloc_fn, &m, sizeof m);
            memcpy(&a->free_fn, &f, sizeof f);
            a->version = library_version(libs[k].lib, handle);
            loaded++;
        }
    }
    if (process != NULL) {
        dlclose(process);
    }
    return loaded;
}
