/*
 * misuse MISUSE: commits one misuse of the malloc family, then allocates and
 * frees some more and prints "continued". Run preloaded with the drop-in by
 * misuse.sh, which checks what the drop-in reported on stderr and that the
 * program went on. MISUSE is one of the names in the table below.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Opaque to the compiler, so that it neither warns about nor removes the
 * misuse. */
static void *(*volatile allocate)(size_t) = malloc;
static void (*volatile release)(void *) = free;

/* keeper stays live, so that the block's page or chunk stays in use and its
 * allocator, not the chunk map, sees the second free. */
static void double_free(size_t size)
{
    char *keeper = allocate(size);
    char *p = allocate(size);
    release(p);
    release(p);
    release(keeper);
}

static void double_free_last_block(void)
{
    char *p = allocate(3000);
    release(p);
    release(p);
}

static void interior_free(size_t size)
{
    char *p = allocate(size);
    release(p + 16);
    release(p);
}

static void overflow(size_t size)
{
    char *p = allocate(size);
    memset(p, 'x', size + 1);
    release(p);
}

/* keeper as in double_free: an allocator's quarantine empties when its last
 * block is freed (SPEC "Debug builds"), so a write after the free of the
 * last block of a page or chunk is not seen. */
static void write_after_free(size_t size)
{
    char *keeper = allocate(size);
    char *p = allocate(size);
    release(p);
    p[size / 2] = 'x';
    release(keeper);
}

static void double_free_small(void) { double_free(24); }
static void double_free_medium(void) { double_free(3000); }
static void interior_free_small(void) { interior_free(100); }
static void interior_free_medium(void) { interior_free(5000); }
static void overflow_small(void) { overflow(32); }
static void overflow_medium(void) { overflow(3000); }
static void write_after_free_medium(void) { write_after_free(3000); }
static void write_after_free_small(void) { write_after_free(48); }

static const struct {
    const char *name;
    void (*run)(void);
} misuses[] = {
    {"double_free_small", double_free_small},
    {"double_free_medium", double_free_medium},
    {"interior_free_small", interior_free_small},
    {"interior_free_medium", interior_free_medium},
    {"overflow_small", overflow_small},
    {"overflow_medium", overflow_medium},
    {"write_after_free_medium", write_after_free_medium},
    {"write_after_free_small", write_after_free_small},
    {"double_free_last_block", double_free_last_block},
};

int main(int argc, char **argv)
{
    for (size_t i = 0; argc == 2 && i < sizeof misuses / sizeof misuses[0]; i++) {
        if (strcmp(argv[1], misuses[i].name) == 0) {
            misuses[i].run();
            /* Enough traffic afterwards to pass every freed block through the
             * debug quarantine and to reuse the sizes involved. */
            for (int round = 0; round < 64; round++) {
                void *small = allocate(24), *medium = allocate(3000);
                release(small);
                release(medium);
            }
            puts("continued");
            return 0;
        }
    }
    fprintf(stderr, "usage: misuse MISUSE (see tests/malloc/misuse.c)\n");
    return 2;
}
