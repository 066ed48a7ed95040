/* The per-call timer of `poolkit bench` (see bench.h). */
#define _POSIX_C_SOURCE 200809L
#include <time.h>

#include "bench.h"

double bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

#if !BENCH_RDTSC
uint64_t bench_tick_start(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
uint64_t bench_tick_stop(void) { return bench_tick_start(); }
#endif

/* The counter's step: the greatest common divisor of many successive
 * differences (a virtual machine's TSC may move by several ticks at once). */
static uint64_t counter_step(void)
{
    uint64_t step = 0, last = bench_tick_start();
    for (int i = 0; i < 4096; i++) {
        uint64_t now = bench_tick_start();
        uint64_t a = now - last, b = step; /* step = gcd(a, step) */
        while (b != 0) {
            uint64_t r = a % b;
            a = b;
            b = r;
        }
        step = a;
        last = now;
    }
    return step;
}

void bench_clock_init(bench_clock *c)
{
#if BENCH_RDTSC
    c->name = "rdtsc";
    /* Ticks over 20 ms of CLOCK_MONOTONIC, the first read of each pair
     * bracketing the second. */
    double t0 = bench_now_ns();
    uint64_t k0 = bench_tick_start();
    double t1;
    do {
        t1 = bench_now_ns();
    } while (t1 - t0 < 20e6);
    uint64_t k1 = bench_tick_stop();
    c->ticks_per_ns = (double)(k1 - k0) / (t1 - t0);
    if (!(c->ticks_per_ns > 0)) {
        c->ticks_per_ns = 1.0;
    }
#else
    c->name = "clock_gettime(CLOCK_MONOTONIC)";
    c->ticks_per_ns = 1.0;
#endif
    c->step_ns = (double)counter_step() / c->ticks_per_ns;
}
