/* What scripts/stack_check.py must refuse, one of each: it compiles this
 * file first and fails unless all three are caught. Not part of any build. */
#include <stddef.h>
#include <string.h>

size_t large_frame(const unsigned char *src, size_t n);
size_t variable_frame(size_t n);
unsigned ping(unsigned n);
unsigned pong(unsigned n);

/* A frame above any limit the script sets. */
size_t large_frame(const unsigned char *src, size_t n)
{
    volatile unsigned char copy[4096];
    size_t sum = 0;
    for (size_t i = 0; i < n && i < sizeof copy; i++) {
        copy[i] = src[i];
        sum += copy[i];
    }
    return sum;
}

/* A VLA: dynamic, unbounded stack use. */
size_t variable_frame(size_t n)
{
    volatile unsigned char bytes[n + 1];
    bytes[n] = 1;
    return bytes[n];
}

/* Mutual recursion; each calls the other twice, so that gcc can turn
 * neither call into a loop. */
unsigned ping(unsigned n)
{
    return n < 2 ? n : pong(n - 1) + pong(n - 2);
}

unsigned pong(unsigned n)
{
    return n < 2 ? 1 : ping(n - 1) + ping(n / 2);
}
