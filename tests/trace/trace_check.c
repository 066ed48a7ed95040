/*
 * trace_check TRACE [MIN_EVENTS]: loads a trace with the reader, prints its
 * events per operation, threads and missing sequence numbers, and checks
 * that it is consistent: walked in seq order, no call returns a block that
 * is still live, and every pointer freed or reallocated was returned before
 * and is still live. Exit status 0 when consistent, with no missing seq and
 * at least MIN_EVENTS events (default 1); 1 otherwise; 2 for bad arguments
 * or a file the reader refuses. A test helper (tests/trace/).
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "live_set.h"
#include "trace/trace.h"

static const char *const op_names[] = {"?", "malloc", "calloc", "realloc", "aligned", "free"};

int main(int argc, char **argv)
{
    char *end = NULL;
    unsigned long long min_events = 1;
    if (argc < 2 || argc > 3 || (argc == 3 && ((min_events = strtoull(argv[2], &end, 10)), *end != '\0'))) {
        fprintf(stderr, "usage: trace_check TRACE [MIN_EVENTS]\n");
        return 2;
    }
    pk_trace t;
    char err[512];
    if (pk_trace_load(argv[1], &t, err, sizeof err) != 0) {
        fprintf(stderr, "trace_check: %s\n", err);
        return 2;
    }
    uint64_t per_op[6] = {0}, problems = 0;
    live_set live;
    if (live_set_init(&live) != 0) {
        fprintf(stderr, "trace_check: out of memory\n");
        return 2;
    }
    for (size_t i = 0; i < t.count; i++) {
        const pk_trace_event *e = &t.events[i];
        per_op[e->op]++;
        bool releases = e->op == PK_TRACE_FREE || (e->op == PK_TRACE_REALLOC && e->old != 0 &&
                                                    (e->result != 0 || e->size == 0));
        if ((e->op == PK_TRACE_FREE || (e->op == PK_TRACE_REALLOC && e->old != 0)) && !live_set_has(&live, e->old)) {
            if (problems++ < 5) {
                printf("seq %" PRIu64 ": %s of 0x%" PRIx64 ", not a live block\n", e->seq, op_names[e->op], e->old);
            }
            releases = false;
        }
        if (releases) {
            live_set_remove(&live, e->old);
        }
        if (e->op != PK_TRACE_FREE && e->result != 0) {
            if (live_set_has(&live, e->result)) {
                if (problems++ < 5) {
                    printf("seq %" PRIu64 ": %s returned 0x%" PRIx64 ", a live block\n", e->seq, op_names[e->op],
                           e->result);
                }
            } else if (live_set_add(&live, e->result) != 0) {
                fprintf(stderr, "trace_check: out of memory\n");
                return 2;
            }
        }
    }
    printf("%s: %zu events (malloc %" PRIu64 ", calloc %" PRIu64 ", realloc %" PRIu64 ", aligned %" PRIu64
           ", free %" PRIu64 "), %" PRIu32 " threads, %" PRIu64 " missing, %zu live at the end, %" PRIu64
           " problems\n",
           argv[1], t.count, per_op[1], per_op[2], per_op[3], per_op[4], per_op[5], t.threads, t.missing,
           live.count, problems);
    bool ok = problems == 0 && t.missing == 0 && t.count >= min_events;
    if (t.count < min_events) {
        printf("fewer events than %llu\n", min_events);
    }
    live_set_free(&live);
    pk_trace_free(&t);
    return ok ? 0 : 1;
}
