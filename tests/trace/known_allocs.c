/*
 * known_allocs LIB DIR: the recorder's end-to-end test. Runs itself as
 * `known_allocs --record DIR` with LD_PRELOAD=LIB and POOLKIT_TRACE=DIR/trace,
 * where it makes a known set of calls (every operation of the malloc family,
 * from the main thread and a worker, one fork whose child makes its own) and
 * lists each call it made, with the pointers it got, in DIR/expected. Then
 * it loads the traces with the reader and checks: each listed call is in
 * the trace with its operation, size, alignment, result and old pointer,
 * each thread's calls on one thread number, in the order made; two
 * threads and no missing seq; free(NULL) not recorded; the child's file
 * DIR/trace.<pid> with its own calls, seqs from 0, and none of the events
 * the parent had not written yet at the fork, which stay the parent's.
 * Prints "N passed, N failed"; exit status 1 if any check failed.
 */
#define _GNU_SOURCE /* NOLINT(bugprone-reserved-identifier,cert-dcl37-c,cert-dcl51-cpp): valloc, pvalloc, memalign, reallocarray */
#include <inttypes.h>
#include <malloc.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "trace/trace.h"

/* ---- Recording: the calls, each listed as made ------------------------- */

typedef struct {
    char who;          /* M main thread, W worker, C fork child */
    uint8_t op;
    uint64_t size, align, result, old;
} call;

static call calls[64];
static size_t call_count;
static pthread_mutex_t calls_lock = PTHREAD_MUTEX_INITIALIZER;

/* A pointer as listed (taken before a call that may free it). */
#define ADDR(p) ((uint64_t)(uintptr_t)(p))

static void *made(char who, uint8_t op, uint64_t size, uint64_t align, void *result, uint64_t old)
{
    (void)pthread_mutex_lock(&calls_lock);
    if (call_count < sizeof calls / sizeof calls[0]) {
        calls[call_count++] = (call){who, op, size, align, ADDR(result), old};
    }
    (void)pthread_mutex_unlock(&calls_lock);
    return result;
}

static void made_free(char who, void *p)
{
    (void)made(who, PK_TRACE_FREE, 0, 0, NULL, ADDR(p));
    free(p);
}

static void *for_the_worker; /* allocated by main, freed by the worker */

static void *worker(void *arg)
{
    (void)arg;
    void *a = made('W', PK_TRACE_MALLOC, 2001, 0, malloc(2001), 0);
    void *b = made('W', PK_TRACE_CALLOC, 2 * 1001, 0, calloc(2, 1001), 0);
    uint64_t a_addr = ADDR(a);
    void *a2 = realloc(a, 20003);
    (void)made('W', PK_TRACE_REALLOC, 20003, 0, a2, a_addr);
    void *c = NULL;
    int status = posix_memalign(&c, 4096, 2004);
    (void)made('W', PK_TRACE_ALIGNED, 2004, 4096, status == 0 ? c : NULL, 0);
    made_free('W', b);
    made_free('W', a2);
    made_free('W', c);
    made_free('W', for_the_worker);
    return NULL;
}

static bool write_calls(const char *path)
{
    FILE *out = fopen(path, "w");
    if (out == NULL) {
        return false;
    }
    for (size_t i = 0; i < call_count; i++) {
        const call *c = &calls[i];
        fprintf(out, "%c %u %" PRIu64 " %" PRIu64 " %" PRIx64 " %" PRIx64 "\n", c->who, c->op, c->size, c->align,
                c->result, c->old);
    }
    return fclose(out) == 0;
}

static int record(const char *dir)
{
    char path[4096];
    long page = sysconf(_SC_PAGESIZE);
    void *a = made('M', PK_TRACE_MALLOC, 1001, 0, malloc(1001), 0);
    void *b = made('M', PK_TRACE_CALLOC, 3 * 1002, 0, calloc(3, 1002), 0);
    uint64_t a_addr = ADDR(a), b_addr = ADDR(b);
    void *a2 = realloc(a, 10003);
    (void)made('M', PK_TRACE_REALLOC, 10003, 0, a2, a_addr);
    void *c = made('M', PK_TRACE_REALLOC, 1004, 0, realloc(NULL, 1004), 0);
    uint64_t c_addr = ADDR(c), a2_addr = ADDR(a2);
    (void)made('M', PK_TRACE_REALLOC, 0, 0, realloc(c, 0), c_addr); /* glibc: frees c, returns NULL */
    void *a3 = reallocarray(a2, 5, 2001);
    (void)made('M', PK_TRACE_REALLOC, 5 * 2001, 0, a3, a2_addr);
    /* volatile: the compiler sees neither the overflow nor b live after the
     * failed call. */
    volatile size_t huge = SIZE_MAX / 2;
    void *volatile b_kept = b;
    (void)made('M', PK_TRACE_REALLOC, UINT64_MAX, 0, reallocarray(b, huge, 3), b_addr); /* overflows: fails */
    void *d = NULL;
    int status = posix_memalign(&d, 64, 1006);
    (void)made('M', PK_TRACE_ALIGNED, 1006, 64, status == 0 ? d : NULL, 0);
    void *e = made('M', PK_TRACE_ALIGNED, 1280, 256, aligned_alloc(256, 1280), 0);
    void *f = made('M', PK_TRACE_ALIGNED, 1010, 32, memalign(32, 1010), 0);
    void *g = made('M', PK_TRACE_ALIGNED, 1008, (uint64_t)page, valloc(1008), 0);
    void *h = made('M', PK_TRACE_ALIGNED, (uint64_t)page, (uint64_t)page, pvalloc(1009), 0);
    free(NULL);
    for_the_worker = made('M', PK_TRACE_MALLOC, 1011, 0, malloc(1011), 0);
    pthread_t thread;
    if (pthread_create(&thread, NULL, worker, NULL) != 0 || pthread_join(thread, NULL) != 0) {
        return 1;
    }
    void *pre_fork = made('M', PK_TRACE_MALLOC, 3001, 0, malloc(3001), 0);
    fflush(NULL);
    pid_t child = fork();
    if (child == 0) {
        call_count = 0;
        void *x = made('C', PK_TRACE_MALLOC, 4001, 0, malloc(4001), 0);
        void *y = made('C', PK_TRACE_CALLOC, 4002, 0, calloc(1, 4002), 0);
        uint64_t x_addr = ADDR(x);
        void *x2 = realloc(x, 40003);
        (void)made('C', PK_TRACE_REALLOC, 40003, 0, x2, x_addr);
        made_free('C', y);
        made_free('C', x2);
        made_free('C', pre_fork); /* inherited: returned in the parent's trace */
        snprintf(path, sizeof path, "%s/expected.child", dir);
        exit(write_calls(path) ? 0 : 1);
    }
    int child_status;
    if (child < 0 || waitpid(child, &child_status, 0) != child || !WIFEXITED(child_status) ||
        WEXITSTATUS(child_status) != 0) {
        return 1;
    }
    made_free('M', pre_fork);
    made_free('M', a3);
    made_free('M', b_kept);
    made_free('M', d);
    made_free('M', e);
    made_free('M', f);
    made_free('M', g);
    made_free('M', h);
    snprintf(path, sizeof path, "%s/expected", dir);
    if (!write_calls(path)) {
        return 1;
    }
    snprintf(path, sizeof path, "%s/child_pid", dir);
    FILE *out = fopen(path, "w");
    if (out == NULL) {
        return 1;
    }
    fprintf(out, "%ld\n", (long)child);
    return fclose(out) == 0 ? 0 : 1;
}

/* ---- Checking ------------------------------------------------------------ */

static int passed, failed;

static void check(bool ok, const char *what, const char *detail)
{
    if (ok) {
        passed++;
        printf("ok      %s\n", what);
    } else {
        failed++;
        printf("FAILED  %s%s%s\n", what, detail[0] != '\0' ? ": " : "", detail);
    }
}

static size_t read_calls(const char *path, call *out, size_t max)
{
    FILE *in = fopen(path, "r");
    size_t n = 0;
    if (in == NULL) {
        return 0;
    }
    call c;
    unsigned op;
    while (n < max && fscanf(in, " %c %u %" SCNu64 " %" SCNu64 " %" SCNx64 " %" SCNx64, &c.who, &op, &c.size,
                             &c.align, &c.result, &c.old) == 6) {
        c.op = (uint8_t)op;
        out[n++] = c;
    }
    fclose(in);
    return n;
}

/* The first event after index from (SIZE_MAX: from the start) that
 * matches c, on thread (if any_thread is false); SIZE_MAX if none. */
static size_t find(const pk_trace *t, const call *c, size_t from, bool any_thread, uint32_t thread)
{
    for (size_t i = from == SIZE_MAX ? 0 : from + 1; i < t->count; i++) {
        const pk_trace_event *e = &t->events[i];
        if (e->op == c->op && e->size == c->size && e->align == c->align && e->result == c->result &&
            e->old == c->old && (any_thread || e->thread == thread)) {
            return i;
        }
    }
    return SIZE_MAX;
}

/* Every listed call found, each thread's on one thread number in the order
 * they were made (an address freed twice, reused in between, is two calls). */
static void check_calls(const pk_trace *t, const call *list, size_t count, const char *name)
{
    char what[256], detail[256] = "";
    size_t last_index[3] = {SIZE_MAX, SIZE_MAX, SIZE_MAX};
    uint32_t thread_of[3] = {0, 0, 0};
    bool ok = true;
    for (size_t i = 0; i < count && ok; i++) {
        const call *c = &list[i];
        int who = c->who == 'M' ? 0 : c->who == 'W' ? 1 : 2;
        size_t at = find(t, c, last_index[who], last_index[who] == SIZE_MAX, thread_of[who]);
        if (at == SIZE_MAX) {
            snprintf(detail, sizeof detail, "call %zu (%c op %u size %" PRIu64 ") not found after its thread's previous",
                     i, c->who, c->op, c->size);
            ok = false;
        } else {
            thread_of[who] = t->events[at].thread;
            last_index[who] = at;
        }
    }
    snprintf(what, sizeof what, "%s: the %zu calls made are in the trace, in their thread's order", name, count);
    check(ok && count > 0, what, detail);
    if (last_index[0] != SIZE_MAX && last_index[1] != SIZE_MAX) {
        snprintf(what, sizeof what, "%s: the main thread's and the worker's calls on two thread numbers", name);
        check(thread_of[0] != thread_of[1], what, "");
    }
}

static void count_ops(const call *list, size_t count, char who, uint64_t per_op[6])
{
    memset(per_op, 0, 6 * sizeof per_op[0]);
    for (size_t i = 0; i < count; i++) {
        if (list[i].who == who) {
            per_op[list[i].op]++;
        }
    }
}

static int check_traces(const char *dir)
{
    char path[4096], err[600], what[256];
    call parent_calls[64], child_calls[64];
    snprintf(path, sizeof path, "%s/expected", dir);
    size_t parent_count = read_calls(path, parent_calls, 64);
    snprintf(path, sizeof path, "%s/expected.child", dir);
    size_t child_count = read_calls(path, child_calls, 64);
    uint64_t per_op[6];
    count_ops(parent_calls, parent_count, 'M', per_op);
    check(parent_count == 30 && per_op[1] == 3 && per_op[2] == 1 && per_op[3] == 5 && per_op[4] == 5 &&
              per_op[5] == 8,
          "the program listed its 30 calls (main: 3 malloc, 1 calloc, 5 realloc, 5 aligned, 8 free; worker 8)", "");
    check(child_count == 6, "the fork child listed its 6 calls", "");

    pk_trace parent, child;
    snprintf(path, sizeof path, "%s/trace", dir);
    bool parent_ok = pk_trace_load(path, &parent, err, sizeof err) == 0;
    check(parent_ok, "the parent's trace loads", parent_ok ? "" : err);
    if (parent_ok) {
        check_calls(&parent, parent_calls, parent_count, "parent");
        snprintf(what, sizeof what, "parent: 2 threads (%" PRIu32 "), no missing seq (%" PRIu64 ")", parent.threads,
                 parent.missing);
        check(parent.threads == 2 && parent.missing == 0, what, "");
        bool free_null = false, child_events = false;
        for (size_t i = 0; i < parent.count; i++) {
            free_null |= parent.events[i].op == PK_TRACE_FREE && parent.events[i].old == 0;
            for (size_t j = 0; j < child_count; j++) {
                child_events |= child_calls[j].op != PK_TRACE_FREE && parent.events[i].size == child_calls[j].size &&
                                parent.events[i].op == child_calls[j].op;
            }
        }
        check(!free_null, "parent: free(NULL) not recorded", "");
        check(!child_events, "parent: none of the child's calls", "");
        pk_trace_free(&parent);
    }

    long child_pid = 0;
    snprintf(path, sizeof path, "%s/child_pid", dir);
    FILE *in = fopen(path, "r");
    if (in != NULL) {
        if (fscanf(in, "%ld", &child_pid) != 1) {
            child_pid = 0;
        }
        fclose(in);
    }
    snprintf(path, sizeof path, "%s/trace.%ld", dir, child_pid);
    bool child_ok = child_pid > 0 && pk_trace_load(path, &child, err, sizeof err) == 0;
    check(child_ok, "the fork child's trace (trace.<pid>) loads", child_ok ? "" : err);
    if (child_ok) {
        check_calls(&child, child_calls, child_count, "child");
        snprintf(what, sizeof what, "child: its pid in the header, seqs from 0, one thread, numbered 0");
        check(child.pid == (uint32_t)child_pid && child.count > 0 && child.events[0].seq == 0 && child.missing == 0 &&
                  child.threads == 1 && child.events[0].thread == 0,
              what, "");
        bool parent_unflushed = false;
        for (size_t i = 0; i < child.count; i++) {
            parent_unflushed |= child.events[i].op == PK_TRACE_MALLOC && child.events[i].size == 3001;
        }
        check(!parent_unflushed, "child: none of the parent's events before the fork", "");
        pk_trace_free(&child);
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--record") == 0) {
        return record(argv[2]);
    }
    if (argc != 3) {
        fprintf(stderr, "usage: known_allocs LIB DIR\n");
        return 2;
    }
    char trace[4096], preload[4200];
    snprintf(trace, sizeof trace, "POOLKIT_TRACE=%s/trace", argv[2]);
    snprintf(preload, sizeof preload, "LD_PRELOAD=%s", argv[1]);
    char *env[] = {trace, preload, NULL};
    char *args[] = {argv[0], "--record", argv[2], NULL};
    char mkdir_command[4200];
    snprintf(mkdir_command, sizeof mkdir_command, "rm -rf '%s' && mkdir -p '%s'", argv[2], argv[2]);
    if (system(mkdir_command) != 0) {
        fprintf(stderr, "known_allocs: can't create %s\n", argv[2]);
        return 2;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        execve("/proc/self/exe", args, env);
        _exit(127);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        printf("FAILED  the recorded run (status %d)\n0 passed, 1 failed\n", status);
        return 1;
    }
    return check_traces(argv[2]);
}
