/* A pool misused on purpose, for the tool tests (run.sh): under Valgrind's
 * memcheck and under AddressSanitizer, a debug build of poolkit must make the
 * tool report the misuse at the line marked, as it would for malloc'd
 * memory. Built against a PK_DEBUG=1 library; also built with the library's
 * tool annotations turned off (PK_NO_TOOL_ANNOTATIONS), where the tool must
 * see nothing: the reports come from the annotations.
 * usage: misuse overflow|use-after-free|atomic-use-after-free */
#include <stdio.h>
#include <string.h>

#include "poolkit/atomic_pool.h"
#include "poolkit/pool.h"

PK_POOL_DEFINE_STATIC(buffers, 24, 4, 0);
static _Alignas(16) unsigned char atomic_buf[PK_ATOMIC_POOL_BUFFER_SIZE(24, 4, 0)];

static void quiet(const pk_fault *f, void *ctx)
{
    (void)f;
    (void)ctx;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: misuse overflow|use-after-free|atomic-use-after-free\n");
        return 2;
    }
    pk_set_fault_handler(quiet, NULL); /* the tools' reports are what is checked */
    volatile unsigned char sink = 0;
    if (strcmp(argv[1], "overflow") == 0) {
        unsigned char *p = pk_pool_alloc(&buffers);
        memset(p, 1, 24);
        p[24] = 2; /* MARK: overflow */
        sink = p[0];
    } else if (strcmp(argv[1], "use-after-free") == 0) {
        unsigned char *keep = pk_pool_alloc(&buffers); /* a live block: the quarantine stays */
        unsigned char *p = pk_pool_alloc(&buffers);
        memset(p, 1, 24);
        pk_pool_free(&buffers, p);
        sink = p[3]; /* MARK: use-after-free */
        pk_pool_free(&buffers, keep);
    } else if (strcmp(argv[1], "atomic-use-after-free") == 0) {
        pk_atomic_pool pool;
        if (pk_atomic_pool_init(&pool, atomic_buf, sizeof atomic_buf, 24, 0) != PK_OK) {
            return 3;
        }
        unsigned char *p = pk_atomic_pool_alloc(&pool);
        memset(p, 1, 24);
        pk_atomic_pool_free(&pool, p);
        sink = p[3]; /* MARK: atomic-use-after-free */
    } else {
        return 2;
    }
    printf("misuse %s done (%d)\n", argv[1], sink);
    return 0;
}
