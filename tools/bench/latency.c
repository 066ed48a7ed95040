/* Exact per-call latency counts (see bench.h). */
#include <math.h>
#include <stdlib.h>

#include "bench.h"

int bench_latency_init(bench_latency *l)
{
    *l = (bench_latency){0};
    l->counts = calloc(BENCH_EXACT_TICKS, sizeof *l->counts);
    return l->counts != NULL ? 0 : -1;
}

void bench_latency_free(bench_latency *l)
{
    free(l->counts);
    free(l->long_calls);
    *l = (bench_latency){0};
}

int bench_latency_add(bench_latency *l, uint64_t ticks)
{
    if (ticks < BENCH_EXACT_TICKS) {
        l->counts[ticks]++;
    } else {
        if (l->long_count == l->long_capacity) {
            size_t capacity = l->long_capacity ? 2 * l->long_capacity : 256;
            uint64_t *grown = realloc(l->long_calls, capacity * sizeof *grown);
            if (grown == NULL) {
                return -1;
            }
            l->long_calls = grown;
            l->long_capacity = capacity;
        }
        l->long_calls[l->long_count++] = ticks;
    }
    l->calls++;
    return 0;
}

static int compare_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static void sort_long_calls(bench_latency *l)
{
    if (l->long_count > 1) {
        qsort(l->long_calls, l->long_count, sizeof *l->long_calls, compare_u64);
    }
}

uint64_t bench_latency_quantile(bench_latency *l, double q)
{
    if (l->calls == 0) {
        return 0;
    }
    /* The rank of the call wanted, 1-based: ceil(q * calls), at least 1. */
    double r = ceil(q * (double)l->calls);
    uint64_t rank = r < 1 ? 1 : r > (double)l->calls ? l->calls : (uint64_t)r;
    uint64_t seen = 0;
    for (uint64_t t = 0; t < BENCH_EXACT_TICKS; t++) {
        seen += l->counts[t];
        if (seen >= rank) {
            return t;
        }
    }
    sort_long_calls(l);
    return l->long_calls[rank - seen - 1];
}

void bench_latency_tail(bench_latency *l, const uint64_t *t, size_t n, double *above)
{
    sort_long_calls(l);
    uint64_t at_most = 0, k = 0; /* calls counted: those of fewer than k ticks, and long ones */
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        for (; k <= t[i] && k < BENCH_EXACT_TICKS; k++) {
            at_most += l->counts[k];
        }
        for (; j < l->long_count && l->long_calls[j] <= t[i]; j++) {
            at_most++;
        }
        above[i] = l->calls ? (double)(l->calls - at_most) / (double)l->calls : 0.0;
    }
}
