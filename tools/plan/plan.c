/*
 * poolkit plan TRACE [--margin PCT] [--heap-above BYTES] [--out FILE.c]
 *
 * Proposes a configuration of pools and a heap for the allocations a trace
 * recorded (tools/plan/planner.h tells how), prints it as C, and replays the
 * trace on it. Exit status: 0 the plan replays without failure, 1 it does
 * not (or the plan could not be made), 2 a bad option, an unreadable or
 * malformed trace, or a trace with no allocation.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "plan/planner.h"

#define HEAP_ABOVE_MAX ((size_t)1 << 30)

static void usage(FILE *out)
{
    fprintf(out,
            "usage: poolkit plan TRACE [--margin PCT] [--heap-above BYTES] [--out FILE.c]\n"
            "\n"
            "Plans fixed-size pools (one per size class, each holding the most blocks of\n"
            "its class live at once in TRACE) and a heap for the larger sizes, prints the\n"
            "plan as C (PK_POOL_DEFINE lines, a pk_class_spec array, the heap's buffer,\n"
            "the totals beside what one pk_heap alone needs), and replays TRACE on it.\n"
            "\n"
            "  --margin PCT        add PCT percent (0..%u, rounded up) to every count\n"
            "                      and to the heap (default 0: exactly the high-water marks)\n"
            "  --heap-above BYTES  requests above BYTES (after rounding up to their\n"
            "                      alignment) always go to the heap (default %zu)\n"
            "  --out FILE.c        write the C to FILE.c and a summary to stdout\n"
            "                      (default: the C to stdout)\n"
            "  --help              this text\n"
            "\n"
            "Exit status: 0 the trace replays on the plan without failure, 1 it does not,\n"
            "2 a bad option or trace.\n",
            PLAN_MARGIN_MAX, PLAN_HEAP_ABOVE_DEFAULT);
}

/* A decimal number in [min, max], all of text; false otherwise. */
static bool parse_number(const char *text, unsigned long long min, unsigned long long max,
                         unsigned long long *out)
{
    if (text[0] < '0' || text[0] > '9') {
        return false;
    }
    char *end;
    errno = 0;
    unsigned long long value = strtoull(text, &end, 10);
    if (errno != 0 || *end != '\0' || value < min || value > max) {
        return false;
    }
    *out = value;
    return true;
}

int plan_main(int argc, char **argv)
{
    const char *trace_path = NULL, *out_path = NULL;
    unsigned long long margin = 0, heap_above = PLAN_HEAP_ABOVE_DEFAULT;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        bool takes_value = strcmp(arg, "--margin") == 0 || strcmp(arg, "--heap-above") == 0 ||
                           strcmp(arg, "--out") == 0;
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (takes_value && i + 1 >= argc) {
            fprintf(stderr, "poolkit plan: %s needs a value\n", arg);
            return 2;
        }
        if (strcmp(arg, "--margin") == 0) {
            if (!parse_number(argv[++i], 0, PLAN_MARGIN_MAX, &margin)) {
                fprintf(stderr, "poolkit plan: --margin '%s': not a whole number of percent from 0 to %u\n",
                        argv[i], PLAN_MARGIN_MAX);
                return 2;
            }
        } else if (strcmp(arg, "--heap-above") == 0) {
            if (!parse_number(argv[++i], PLAN_GRANULE, HEAP_ABOVE_MAX, &heap_above)) {
                fprintf(stderr, "poolkit plan: --heap-above '%s': not a number of bytes from %zu to %zu\n",
                        argv[i], PLAN_GRANULE, HEAP_ABOVE_MAX);
                return 2;
            }
        } else if (strcmp(arg, "--out") == 0) {
            out_path = argv[++i];
        } else if (arg[0] == '-' && arg[1] != '\0') {
            fprintf(stderr, "poolkit plan: unknown option '%s' (poolkit plan --help lists them)\n", arg);
            return 2;
        } else if (trace_path) {
            fprintf(stderr, "poolkit plan: one trace at a time ('%s' and '%s')\n", trace_path, arg);
            return 2;
        } else {
            trace_path = arg;
        }
    }
    if (!trace_path) {
        fprintf(stderr, "poolkit plan: no trace given\n");
        usage(stderr);
        return 2;
    }

    pk_trace trace;
    char err[512];
    if (pk_trace_load(trace_path, &trace, err, sizeof err) != 0) {
        fprintf(stderr, "poolkit plan: %s\n", err);
        return 2;
    }
    /* Opened before the planning, which may replay the trace many times, so
     * that a bad path is told at once; removed when no plan gets in it. */
    FILE *out = stdout;
    if (out_path && !(out = fopen(out_path, "w"))) {
        fprintf(stderr, "poolkit plan: --out '%s': %s\n", out_path, strerror(errno));
        pk_trace_free(&trace);
        return 2;
    }
    bool printed = false;
    plan p;
    int status = plan_build(&trace, (unsigned)margin, (size_t)heap_above, &p, err, sizeof err);
    if (status != 0) {
        fprintf(stderr, "poolkit plan: %s: %s\n", trace_path, err);
        status = status < 0 ? 2 : 1;
    } else {
        replay_result result;
        memset(&result, 0, sizeof result);
        status = 1;
        if (plan_replay(&trace, &p, &result) == 0) {
            plan_print(out, &p, trace_path, &trace, &result);
            printed = true;
            status = result.failed ? 1 : 0;
        }
        if (result.failed) {
            fprintf(stderr, "poolkit plan: %s: the replay on the plan failed: %llu calls failed, the first at "
                    "event %llu (%zu bytes)\n", trace_path, (unsigned long long)result.failures,
                    (unsigned long long)result.first_failure, result.first_failure_size);
        } else if (out_path && status == 0) {
            printf("%s: %zu pool classes, %zu bytes + heap %zu bytes = %zu bytes; one pk_heap alone: %zu "
                   "bytes.\nReplayed on the plan without failure (%llu calls). The C is in %s.\n",
                   trace_path, p.class_count, p.pool_bytes, p.heap_bytes, p.pool_bytes + p.heap_bytes,
                   p.heap_alone_bytes, (unsigned long long)result.calls, out_path);
        }
        plan_free(&p);
    }
    if (out != stdout) {
        if (fclose(out) != 0) {
            fprintf(stderr, "poolkit plan: --out '%s': %s\n", out_path, strerror(errno));
            status = 1;
        }
        if (!printed) {
            remove(out_path);
        }
    }
    pk_trace_free(&trace);
    return status;
}
