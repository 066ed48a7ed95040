/* Why the atomic pool's head carries a generation tag: a deterministic
 * interleaving of an alloc preempted between reading the free list's head and
 * its compare-and-swap, by an "interrupt" that allocates two blocks and frees
 * the first (the ABA case). Built twice against the library compiled with
 * PK_ATOMIC_POOL_TEST_HOOKS (the hook runs the interrupt): with the real tag
 * the pool stays correct; with PK_ATOMIC_POOL_UNTAGGED (a test-only build
 * whose tag never changes) the stale compare-and-swap succeeds and puts a
 * live block back at the head of the free list, which the test shows. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "support.h"
#include "poolkit/atomic_pool.h"

extern void (*pk__atomic_pool_before_swap)(void);

static _Alignas(64) unsigned char buffer[PK_ATOMIC_POOL_BUFFER_SIZE(32, 4, 0)];
static pk_atomic_pool pool;
static void *interrupt_kept; /* the block the interrupt still holds */
static void *interrupt_first;

/* Runs once, at the first alloc's window between read and swap. */
static void interrupt(void)
{
    pk__atomic_pool_before_swap = NULL;
    interrupt_first = pk_atomic_pool_alloc(&pool);
    interrupt_kept = pk_atomic_pool_alloc(&pool);
    assert_int_equal(pk_atomic_pool_free(&pool, interrupt_first), PK_OK);
}

static void test_preempted_alloc(void **state)
{
    (void)state;
    assert_int_equal(pk_atomic_pool_init(&pool, buffer, sizeof buffer, 32, 0), PK_OK);
    /* Free list A -> B -> C, D never carved. */
    void *a = pk_atomic_pool_alloc(&pool);
    void *b = pk_atomic_pool_alloc(&pool);
    void *c = pk_atomic_pool_alloc(&pool);
    assert_int_equal(pk_atomic_pool_free(&pool, c), PK_OK);
    assert_int_equal(pk_atomic_pool_free(&pool, b), PK_OK);
    assert_int_equal(pk_atomic_pool_free(&pool, a), PK_OK);

    /* The alloc reads head A and its link B; the interrupt takes A and B and
     * gives A back (head A again, link C); then the alloc swaps. */
    pk__atomic_pool_before_swap = interrupt;
    void *mine = pk_atomic_pool_alloc(&pool);
    assert_ptr_equal(interrupt_first, a);
    assert_ptr_equal(interrupt_kept, b);
    assert_ptr_equal(mine, a);

#ifdef PK_ATOMIC_POOL_UNTAGGED
    /* The stale swap made B, which the interrupt holds, the head of the free
     * list: the pool is corrupt, check says so, and C is lost to it. The next
     * alloc would hand B out a second time; the usage bitmap catches that. */
    assert_int_equal(pk_atomic_pool_check(&pool), PK_ERR_CORRUPT);
    expect_fault_named(PK_ERR_CORRUPT, NULL, "atomic pool");
    assert_null(pk_atomic_pool_alloc(&pool));
    expect_fault_named(PK_ERR_CORRUPT, NULL, "atomic pool");
#else
    /* The tag moved, so the swap failed and was retried with the new link:
     * the pool is whole and hands out C, then D, then nothing. */
    assert_int_equal(pk_atomic_pool_check(&pool), PK_OK);
    void *next = pk_atomic_pool_alloc(&pool);
    void *last = pk_atomic_pool_alloc(&pool);
    assert_ptr_equal(next, c);
    assert_non_null(last);
    assert_true(last != a && last != b && last != c);
    assert_null(pk_atomic_pool_alloc(&pool));
    assert_int_equal(pk_atomic_pool_check(&pool), PK_OK);
    assert_int_equal(faults.calls, 0);
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_preempted_alloc, setup_faults, teardown_faults),
    };
    return cmocka_run_group_tests_name("atomic pool ABA", tests, NULL, NULL);
}
