#define _POSIX_C_SOURCE 200809L
#include "pairs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* A positive integer, or 0 after a message. */
static long parse_positive(const char *program, const char *text, const char *what)
{
    char *end;
    long v = strtol(text, &end, 10);
    if (*text == '\0' || *end != '\0' || v <= 0) {
        fprintf(stderr, "%s: %s must be a positive integer, not '%s'\n", program, what, text);
        return 0;
    }
    return v;
}

static int time_modes(const bench_mode *modes, size_t count, long pairs, long runs)
{
    double *samples = calloc((size_t)runs * count, sizeof *samples);
    if (samples == NULL) {
        return 1;
    }
    /* Interleave the modes run by run so that machine noise hits all alike. */
    for (long r = 0; r < runs; r++) {
        for (size_t m = 0; m < count; m++) {
            double t0 = now_ns();
            modes[m].run(pairs);
            samples[m * (size_t)runs + (size_t)r] = (now_ns() - t0) / (double)pairs;
        }
    }
    int width = 10;
    for (size_t m = 0; m < count; m++) {
        qsort(&samples[m * (size_t)runs], (size_t)runs, sizeof *samples, compare_double);
        int len = (int)strlen(modes[m].name);
        width = len > width ? len : width;
    }
    double empty_median = samples[(size_t)runs / 2];
    printf("%-*s %12s %10s %10s\n", width, "mode", "median ns", "min", "max");
    for (size_t m = 1; m < count; m++) {
        const double *s = &samples[m * (size_t)runs];
        printf("%-*s %12.2f %10.2f %10.2f\n", width, modes[m].name, s[(size_t)runs / 2] - empty_median,
               s[0] - empty_median, s[(size_t)runs - 1] - empty_median);
    }
    free(samples);
    return 0;
}

int bench_pairs_main(const char *program, int argc, char **argv, const bench_mode *modes, size_t count,
                     void (*setup)(void))
{
    if (argc == 2 && strcmp(argv[1], "--modes") == 0) {
        for (size_t m = 1; m < count; m++) {
            printf("%s\n", modes[m].name);
        }
        return 0;
    }
    if (argc == 3 && strcmp(argv[1], "--time") != 0) {
        for (size_t m = 0; m < count; m++) {
            if (strcmp(modes[m].name, argv[1]) == 0) {
                long pairs = parse_positive(program, argv[2], "PAIRS");
                if (pairs == 0) {
                    return 2;
                }
                setup();
                modes[m].run(pairs);
                return 0;
            }
        }
        fprintf(stderr, "%s: unknown mode '%s' (%s --modes lists them; %s is the empty loop)\n", program,
                argv[1], program, modes[0].name);
        return 2;
    }
    if (argc == 4 && strcmp(argv[1], "--time") == 0) {
        long pairs = parse_positive(program, argv[2], "PAIRS");
        long runs = pairs != 0 ? parse_positive(program, argv[3], "RUNS") : 0;
        if (runs == 0) {
            return 2;
        }
        setup();
        return time_modes(modes, count, pairs, runs);
    }
    fprintf(stderr, "usage: %s MODE PAIRS | %s --modes | %s --time PAIRS RUNS\n", program, program, program);
    return 2;
}
