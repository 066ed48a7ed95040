/*
 * libpoolkit-trace.so: preloaded (LD_PRELOAD), records every call of the
 * malloc family a program makes into the file named by POOLKIT_TRACE, in the
 * format of tools/trace/FORMAT.md, and forwards each call to the real
 * allocator (the next definition, found with dlsym(RTLD_NEXT)).
 *
 * Recording: each thread encodes its events into its own buffer (mmap'd on
 * its first event, reached through initial-exec TLS, so that recording never
 * calls malloc) and writes the buffer as one block with one write() to a
 * file opened O_APPEND: blocks of different threads interleave but never mix.
 * A buffer is written when it fills, when its thread exits (a pthread key
 * destructor) and at the process's exit (a destructor that walks the
 * registry of live buffers).
 *
 * Order: one global atomic counter gives each event its seq, taken where
 * the call takes effect for the other threads, so that replaying by seq never
 * sees a block handed out while still live:
 * - an allocation takes its seq after the real call returns (the block may
 *   have been freed by another thread just before: that free's seq is older);
 * - free takes its seq before the real free (once freed, another thread may
 *   get the block, and take its seq after);
 * - realloc both releases a block and acquires one, so neither before nor
 *   after is right alone: reallocs run one at a time (realloc_lock) and
 *   count themselves in reallocs_in_flight from before the real call until
 *   their seq is taken; an allocation that returns while one is in flight
 *   waits for that seq before taking its own (the block it got may be the
 *   one the realloc released). Concurrent reallocs thus serialize: the price
 *   of an exact order.
 *
 * Files: the first traced process writes POOLKIT_TRACE, claimed with an
 * exclusive flock() for its life; a process that finds it locked (a program
 * a traced process runs, while that one lives) and a fork child write
 * POOLKIT_TRACE.<pid>, with their own seq from 0. A fork child starts with an
 * empty buffer: the parent's unflushed events are the parent's to write.
 *
 * While the real functions are being looked up, dlsym may call malloc or
 * calloc: those come from a static bootstrap buffer, are not recorded, and
 * freeing them does nothing.
 *
 * POOLKIT_TRACE unset or empty: every call is only forwarded. A file that
 * cannot be opened: one message on stderr, then only forwarding.
 */
#define _GNU_SOURCE /* NOLINT(bugprone-reserved-identifier,cert-dcl37-c,cert-dcl51-cpp): RTLD_NEXT */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "trace/trace.h"

#define EXPORT __attribute__((visibility("default")))

EXPORT void *malloc(size_t size);
EXPORT void free(void *ptr);
EXPORT void *calloc(size_t count, size_t size);
EXPORT void *realloc(void *ptr, size_t size);
EXPORT void *reallocarray(void *ptr, size_t count, size_t size);
EXPORT int posix_memalign(void **out, size_t align, size_t size);
EXPORT void *aligned_alloc(size_t align, size_t size);
EXPORT void *memalign(size_t align, size_t size);
EXPORT void *valloc(size_t size);
EXPORT void *pvalloc(size_t size);

#define UNLIKELY(x) __builtin_expect(!!(x), 0)

/* ---- The real functions and the bootstrap buffer ----------------------- */

static struct {
    void *(*malloc)(size_t);
    void (*free)(void *);
    void *(*calloc)(size_t, size_t);
    void *(*realloc)(void *, size_t);
    int (*posix_memalign)(void **, size_t, size_t);
    void *(*aligned_alloc)(size_t, size_t);
    void *(*memalign)(size_t, size_t);
    void *(*valloc)(size_t);
    void *(*pvalloc)(size_t);
} real;
static _Atomic bool real_found;
static __thread bool finding_real __attribute__((tls_model("initial-exec")));

/* dlsym's allocations while the real functions are looked up: a few small
 * blocks, each after a 16-byte header that holds its size (for realloc). */
#define BOOTSTRAP_SIZE 8192u
static alignas(16) unsigned char bootstrap[BOOTSTRAP_SIZE];
static _Atomic size_t bootstrap_used;

static void *bootstrap_alloc(size_t size)
{
    size_t rounded = (size + 15u) & ~(size_t)15u;
    if (rounded < size || rounded > BOOTSTRAP_SIZE - 16u) {
        return NULL;
    }
    size_t at = atomic_fetch_add(&bootstrap_used, rounded + 16u);
    if (at > BOOTSTRAP_SIZE - 16u - rounded) {
        return NULL;
    }
    memcpy(bootstrap + at, &size, sizeof size);
    return bootstrap + at + 16u;
}

static bool in_bootstrap(const void *p)
{
    return (const unsigned char *)p >= bootstrap && (const unsigned char *)p < bootstrap + BOOTSTRAP_SIZE;
}

static void say(const char *message)
{
    ssize_t ignored = write(STDERR_FILENO, message, strlen(message));
    (void)ignored;
}

/* Casts dlsym's object pointer to a function pointer (POSIX allows it). */
#define FIND(name) (memcpy(&real.name, &(void *){dlsym(RTLD_NEXT, #name)}, sizeof real.name), real.name)

static void find_real(void)
{
    finding_real = true;
    bool found = FIND(malloc) && FIND(free) && FIND(calloc) && FIND(realloc) && FIND(posix_memalign) &&
                 FIND(aligned_alloc) && FIND(memalign) && FIND(valloc) && FIND(pvalloc);
    finding_real = false;
    if (!found) {
        say("libpoolkit-trace: the real malloc family was not found (dlsym RTLD_NEXT)\n");
        abort();
    }
    atomic_store_explicit(&real_found, true, memory_order_release);
}

/* ---- State ------------------------------------------------------------- */

enum { TRACE_UNKNOWN, TRACE_STARTING, TRACE_ON, TRACE_OFF };
static _Atomic int trace_state = TRACE_UNKNOWN;

/* A thread's events, encoded, after room for the block's header. */
#define BUFFER_SIZE ((size_t)64 * 1024)
#define BLOCK_HEADER_ROOM 21u  /* marker, thread varint, count varint */
#define EVENT_MAX 52u          /* op, then at most 5 varints of 10 bytes */
#define NO_THREAD UINT32_MAX   /* its number is taken with its first event */

typedef struct buffer {
    _Atomic int busy;          /* 1 while its thread appends, or for good once the exit flush took it */
    uint32_t thread;
    uint64_t count;            /* events in data */
    uint64_t last_time;        /* of the block's previous event */
    size_t used;               /* bytes of data after BLOCK_HEADER_ROOM */
    struct buffer *next, *prev; /* in the registry */
    unsigned char data[];
} buffer;

enum { THREAD_NEW, THREAD_BUFFERED, THREAD_DIRECT };
/* This thread's buffer, and whether it has one yet (THREAD_DIRECT: no
 * buffer, each event written alone: after its buffer's last flush at exit,
 * or when none could be mapped). */
static __thread buffer *my_buffer __attribute__((tls_model("initial-exec")));
static __thread unsigned char my_state __attribute__((tls_model("initial-exec")));
/* The thread number of this thread's events written alone. */
static __thread uint32_t my_alone_thread __attribute__((tls_model("initial-exec"))) = NO_THREAD;
/* Set while this thread's realloc is in flight: a signal handler's
 * allocation on this thread must not wait for it. */
static __thread bool my_realloc_in_flight __attribute__((tls_model("initial-exec")));

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static buffer *registry;
static bool process_exiting;   /* under registry_lock: the exit flush has run */
static pthread_key_t exit_key;

static _Atomic uint64_t next_seq;
static _Atomic uint32_t next_thread;
static struct timespec trace_start;

static pthread_mutex_t realloc_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic unsigned reallocs_in_flight;

/* The file: claimed at start (or, in a fork child, at its first write). */
static pthread_mutex_t file_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic int trace_fd = -1;
static bool file_failed;       /* under file_lock: said once, forwarding only */
static char base_path[PATH_MAX];

/* ---- Encoding ---------------------------------------------------------- */

static unsigned char *put_varint(unsigned char *p, uint64_t v)
{
    while (v >= 0x80u) {
        *p++ = (unsigned char)(v | 0x80u);
        v >>= 7;
    }
    *p++ = (unsigned char)v;
    return p;
}

static size_t varint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80u) {
        v >>= 7;
        n++;
    }
    return n;
}

typedef struct {
    uint8_t op;
    uint64_t seq, time, size, align, result, old;
} event;

static unsigned char *put_event(unsigned char *p, const event *e, uint64_t time_delta)
{
    *p++ = e->op;
    p = put_varint(p, e->seq);
    p = put_varint(p, time_delta);
    switch (e->op) {
    case PK_TRACE_REALLOC:
        p = put_varint(p, e->old);
        p = put_varint(p, e->size);
        return put_varint(p, e->result);
    case PK_TRACE_ALIGNED:
        p = put_varint(p, e->size);
        p = put_varint(p, e->align);
        return put_varint(p, e->result);
    case PK_TRACE_FREE:
        return put_varint(p, e->old);
    default:
        p = put_varint(p, e->size);
        return put_varint(p, e->result);
    }
}

static uint64_t now_ns(void)
{
    struct timespec t;
    (void)clock_gettime(CLOCK_MONOTONIC, &t);
    int64_t ns = ((int64_t)t.tv_sec - (int64_t)trace_start.tv_sec) * 1000000000 + (t.tv_nsec - trace_start.tv_nsec);
    return ns > 0 ? (uint64_t)ns : 0;
}

/* ---- The file ---------------------------------------------------------- */

static void write_all(int fd, const unsigned char *p, size_t n)
{
    static _Atomic bool failure_said;
    while (n > 0) {
        ssize_t written = write(fd, p, n);
        if (written < 0 && errno == EINTR) {
            continue;
        }
        if (written <= 0) {
            if (!atomic_exchange(&failure_said, true)) {
                say("libpoolkit-trace: writing the trace failed; it is incomplete\n");
            }
            return;
        }
        p += written;
        n -= (size_t)written;
    }
}

static void put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = (unsigned char)(v >> (8 * i));
    }
}

/* Opens path, takes its lock and starts it with the header: the fd, -1 if it
 * can't be opened, -2 if another live process holds it. */
static int claim(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK) {
        (void)close(fd);
        return -2;
    }
    if (ftruncate(fd, 0) != 0) {
        (void)close(fd);
        return -1;
    }
    unsigned char header[32] = PK_TRACE_MAGIC;
    struct timespec wall;
    (void)clock_gettime(CLOCK_REALTIME, &wall);
    uint64_t start = (uint64_t)wall.tv_sec * 1000000000u + (uint64_t)wall.tv_nsec;
    put_u32(header + 8, PK_TRACE_VERSION);
    put_u32(header + 12, sizeof header);
    put_u32(header + 16, (uint32_t)getpid());
    put_u32(header + 20, 0);
    put_u32(header + 24, (uint32_t)start);
    put_u32(header + 28, (uint32_t)(start >> 32));
    write_all(fd, header, sizeof header);
    return fd;
}

/* path + "." + the pid, into out (PATH_MAX bytes); false if too long. */
static bool path_with_pid(char *out, const char *path)
{
    char digits[16];
    size_t n = sizeof digits;
    for (unsigned pid = (unsigned)getpid(); n == sizeof digits || pid != 0; pid /= 10) {
        digits[--n] = (char)('0' + pid % 10);
    }
    size_t length = strlen(path);
    if (length + 1 + (sizeof digits - n) + 1 > PATH_MAX) {
        return false;
    }
    memcpy(out, path, length);
    out[length] = '.';
    memcpy(out + length + 1, digits + n, sizeof digits - n);
    out[length + 1 + (sizeof digits - n)] = '\0';
    return true;
}

/* The fd to write to: the file claimed on the first call (POOLKIT_TRACE, or
 * POOLKIT_TRACE.<pid> when try_base is false or the base is held). -1 when
 * it can't be had: said once, and tracing stops. */
static int open_trace(bool try_base)
{
    int fd = atomic_load_explicit(&trace_fd, memory_order_acquire);
    if (fd >= 0) {
        return fd;
    }
    (void)pthread_mutex_lock(&file_lock);
    fd = atomic_load_explicit(&trace_fd, memory_order_acquire);
    if (fd < 0 && !file_failed) {
        static char path[PATH_MAX];
        fd = try_base ? claim(base_path) : -2;
        const char *tried = base_path;
        if (fd == -2 && path_with_pid(path, base_path)) {
            fd = claim(path);
            tried = path;
        }
        if (fd < 0) {
            file_failed = true;
            atomic_store(&trace_state, TRACE_OFF);
            say("libpoolkit-trace: can't write the trace file ");
            say(tried);
            say(fd == -2 ? " (in use by another process)" : ": ");
            say(fd == -2 ? "" : strerror(errno));
            say("; not tracing\n");
        } else {
            atomic_store_explicit(&trace_fd, fd, memory_order_release);
        }
    }
    (void)pthread_mutex_unlock(&file_lock);
    return fd;
}

/* ---- Buffers ----------------------------------------------------------- */

/* Writes b's events as one block and empties it. */
static void flush(buffer *b)
{
    if (b->count == 0) {
        return;
    }
    int fd = open_trace(false);
    if (fd >= 0) {
        size_t header = 1 + varint_size(b->thread) + varint_size(b->count);
        unsigned char *start = b->data + BLOCK_HEADER_ROOM - header;
        unsigned char *p = start;
        *p++ = 0xB1;
        p = put_varint(p, b->thread);
        (void)put_varint(p, b->count);
        write_all(fd, start, header + b->used);
    }
    b->count = 0;
    b->used = 0;
    b->last_time = 0;
}

static uint32_t take_thread_number(void)
{
    return atomic_fetch_add_explicit(&next_thread, 1, memory_order_relaxed);
}

/* An event written as a block of its own, with a thread number for it. */
static void write_alone(const event *e, uint32_t thread)
{
    unsigned char block[BLOCK_HEADER_ROOM + EVENT_MAX];
    unsigned char *p = block;
    *p++ = 0xB1;
    p = put_varint(p, thread);
    p = put_varint(p, 1);
    p = put_event(p, e, e->time);
    int fd = open_trace(false);
    if (fd >= 0) {
        write_all(fd, block, (size_t)(p - block));
    }
}

static void thread_exits(void *value);

/* This thread's buffer, mapped and registered on its first event; NULL when
 * the thread writes its events alone. */
static buffer *thread_buffer(void)
{
    if (my_state == THREAD_BUFFERED) {
        return my_buffer;
    }
    if (my_state == THREAD_DIRECT) {
        return NULL;
    }
    my_state = THREAD_DIRECT;
    buffer *b = mmap(NULL, BUFFER_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (b == MAP_FAILED) {
        return NULL;
    }
    b->thread = NO_THREAD;
    (void)pthread_mutex_lock(&registry_lock);
    bool exiting = process_exiting;
    if (!exiting) {
        b->next = registry;
        if (registry != NULL) {
            registry->prev = b;
        }
        registry = b;
    }
    (void)pthread_mutex_unlock(&registry_lock);
    if (exiting) {
        (void)munmap(b, BUFFER_SIZE);
        return NULL;
    }
    my_buffer = b;
    my_state = THREAD_BUFFERED;
    (void)pthread_setspecific(exit_key, b); /* thread_exits runs when the thread ends */
    return b;
}

static void append(const event *e)
{
    buffer *b = thread_buffer();
    /* busy taken already: the exit flush has this buffer (or this is a signal
     * handler's call inside an append): the event goes alone. */
    if (b == NULL || atomic_exchange_explicit(&b->busy, 1, memory_order_acquire) != 0) {
        if (b != NULL && b->thread != NO_THREAD) {
            my_alone_thread = b->thread;
        } else if (my_alone_thread == NO_THREAD) {
            my_alone_thread = take_thread_number();
        }
        write_alone(e, my_alone_thread);
        return;
    }
    if (b->thread == NO_THREAD) {
        b->thread = take_thread_number();
    }
    if (b->used > BUFFER_SIZE - sizeof(buffer) - BLOCK_HEADER_ROOM - EVENT_MAX) {
        flush(b);
    }
    uint64_t delta = e->time >= b->last_time ? e->time - b->last_time : 0;
    unsigned char *end = put_event(b->data + BLOCK_HEADER_ROOM + b->used, e, delta);
    b->used = (size_t)(end - (b->data + BLOCK_HEADER_ROOM));
    b->last_time = e->time;
    b->count++;
    atomic_store_explicit(&b->busy, 0, memory_order_release);
}

/* The pthread key's destructor: the thread's last block, then its events go
 * alone (other destructors may still allocate). */
static void thread_exits(void *value)
{
    buffer *b = value;
    (void)pthread_mutex_lock(&registry_lock);
    bool mine = atomic_exchange_explicit(&b->busy, 1, memory_order_acquire) == 0;
    if (mine) {
        flush(b);
        if (b->prev != NULL) {
            b->prev->next = b->next;
        } else {
            registry = b->next;
        }
        if (b->next != NULL) {
            b->next->prev = b->prev;
        }
    }
    (void)pthread_mutex_unlock(&registry_lock);
    my_alone_thread = b->thread;
    if (mine) {
        (void)munmap(b, BUFFER_SIZE);
    }
    my_buffer = NULL;
    my_state = THREAD_DIRECT;
}

/* At the process's exit: every buffer's last block. Threads still running
 * find their buffer taken and write any later event alone. */
static void __attribute__((destructor)) process_exits(void)
{
    if (atomic_load(&trace_state) != TRACE_ON) {
        return;
    }
    (void)pthread_mutex_lock(&registry_lock);
    process_exiting = true;
    for (buffer *b = registry; b != NULL; b = b->next) {
        while (atomic_exchange_explicit(&b->busy, 1, memory_order_acquire) != 0) {
            sched_yield(); /* its thread is appending: a few instructions */
        }
        flush(b);
    }
    (void)pthread_mutex_unlock(&registry_lock);
}

/* ---- fork -------------------------------------------------------------- */

/* The locks, in the order they nest: realloc_lock (held by a realloc, which
 * may register its thread's buffer), registry_lock (held by the flushes at
 * exit, which may open the file), file_lock. */
static void before_fork(void)
{
    (void)pthread_mutex_lock(&realloc_lock);
    (void)pthread_mutex_lock(&registry_lock);
    (void)pthread_mutex_lock(&file_lock);
}

static void after_fork_parent(void)
{
    (void)pthread_mutex_unlock(&file_lock);
    (void)pthread_mutex_unlock(&registry_lock);
    (void)pthread_mutex_unlock(&realloc_lock);
}

/* The child: a new trace (POOLKIT_TRACE.<pid>, opened at its first write)
 * with seq and thread numbers from 0; the buffers of the parent's threads,
 * copies of events the parent writes, dropped. */
static void after_fork_child(void)
{
    buffer *b = registry;
    while (b != NULL) {
        buffer *next = b->next;
        if (b != my_buffer) {
            (void)munmap(b, BUFFER_SIZE);
        }
        b = next;
    }
    registry = NULL;
    if (my_buffer != NULL) {
        my_buffer->next = my_buffer->prev = NULL;
        my_buffer->count = 0;
        my_buffer->used = 0;
        my_buffer->last_time = 0;
        my_buffer->thread = NO_THREAD;
        atomic_store(&my_buffer->busy, 0);
        registry = my_buffer;
    }
    int fd = atomic_load(&trace_fd);
    if (fd >= 0) {
        (void)close(fd); /* the parent's: its lock stays the parent's */
    }
    atomic_store(&trace_fd, -1);
    atomic_store(&next_seq, 0);
    atomic_store(&next_thread, 0);
    atomic_store(&reallocs_in_flight, 0);
    my_alone_thread = NO_THREAD;
    (void)clock_gettime(CLOCK_MONOTONIC, &trace_start);
    (void)pthread_mutex_unlock(&file_lock);
    (void)pthread_mutex_unlock(&registry_lock);
    (void)pthread_mutex_unlock(&realloc_lock);
}

/* ---- Start ------------------------------------------------------------- */

/* Finds the real functions, and with POOLKIT_TRACE set claims the file and
 * sets up the hooks. Runs once, on the first call or at load, whichever
 * comes first; a call from another thread meanwhile waits, one from this
 * thread (the set-up's own allocations) is forwarded. */
static void start(void)
{
    static __thread bool starting __attribute__((tls_model("initial-exec")));
    int expected = TRACE_UNKNOWN;
    if (!atomic_compare_exchange_strong(&trace_state, &expected, TRACE_STARTING)) {
        while (!starting && atomic_load(&trace_state) == TRACE_STARTING) {
            sched_yield();
        }
        return;
    }
    starting = true;
    if (!atomic_load_explicit(&real_found, memory_order_acquire)) {
        find_real();
    }
    int state = TRACE_OFF;
    const char *path = getenv("POOLKIT_TRACE");
    if (path != NULL && path[0] != '\0') {
        if (strlen(path) >= sizeof base_path - 16) {
            say("libpoolkit-trace: POOLKIT_TRACE is too long a path; not tracing\n");
        } else {
            memcpy(base_path, path, strlen(path) + 1);
            (void)clock_gettime(CLOCK_MONOTONIC, &trace_start);
            if (pthread_key_create(&exit_key, thread_exits) == 0 &&
                pthread_atfork(before_fork, after_fork_parent, after_fork_child) == 0 &&
                open_trace(true) >= 0) {
                state = TRACE_ON;
            }
        }
    }
    atomic_store(&trace_state, state);
    starting = false;
}

static void __attribute__((constructor)) start_at_load(void)
{
    if (atomic_load(&trace_state) == TRACE_UNKNOWN) {
        start();
    }
}

/* Whether this call is to be recorded (after the real functions are known). */
static inline bool tracing(void)
{
    int state = atomic_load_explicit(&trace_state, memory_order_acquire);
    if (UNLIKELY(state == TRACE_UNKNOWN || state == TRACE_STARTING)) {
        start();
        state = atomic_load_explicit(&trace_state, memory_order_acquire);
    }
    return state == TRACE_ON;
}

/* ---- Stamps: seq and time ---------------------------------------------- */

static void stamp(event *e)
{
    e->seq = atomic_fetch_add_explicit(&next_seq, 1, memory_order_seq_cst);
    e->time = now_ns();
}

/* The stamp of an allocation whose real call has returned: after the seq of
 * any realloc in flight (it may have released the block just returned). */
static void stamp_allocation(event *e)
{
    while (UNLIKELY(atomic_load_explicit(&reallocs_in_flight, memory_order_seq_cst) != 0) && !my_realloc_in_flight) {
        sched_yield();
    }
    stamp(e);
}

static void record_allocation(uint8_t op, uint64_t size, uint64_t align, void *result)
{
    event e = {.op = op, .size = size, .align = align, .result = (uint64_t)(uintptr_t)result};
    stamp_allocation(&e);
    append(&e);
}

/* ---- The malloc family ------------------------------------------------- */

/* Looks the real functions up if needed; true when the caller is the
 * look-up itself (dlsym's allocation), to be served from the bootstrap. */
static inline bool needs_bootstrap(void)
{
    if (UNLIKELY(!atomic_load_explicit(&real_found, memory_order_acquire))) {
        if (finding_real) {
            return true;
        }
        start();
    }
    return false;
}

void *malloc(size_t size)
{
    if (needs_bootstrap()) {
        return bootstrap_alloc(size);
    }
    void *p = real.malloc(size);
    if (tracing()) {
        record_allocation(PK_TRACE_MALLOC, size, 0, p);
    }
    return p;
}

void free(void *ptr)
{
    if (ptr == NULL || in_bootstrap(ptr)) {
        return;
    }
    needs_bootstrap();
    if (tracing()) {
        event e = {.op = PK_TRACE_FREE, .old = (uint64_t)(uintptr_t)ptr};
        stamp(&e);
        real.free(ptr);
        append(&e);
        return;
    }
    real.free(ptr);
}

void *calloc(size_t count, size_t size)
{
    if (needs_bootstrap()) {
        size_t total;
        void *p = __builtin_mul_overflow(count, size, &total) ? NULL : bootstrap_alloc(total);
        return p; /* static memory: zero already, never reused */
    }
    void *p = real.calloc(count, size);
    if (tracing()) {
        size_t total;
        record_allocation(PK_TRACE_CALLOC, __builtin_mul_overflow(count, size, &total) ? UINT64_MAX : total, 0, p);
    }
    return p;
}

/* realloc(ptr, size) recorded as one event; size_recorded is what was
 * asked (reallocarray's count * size). */
static void *traced_realloc(void *ptr, size_t size, uint64_t size_recorded)
{
    event e = {.op = PK_TRACE_REALLOC, .old = (uint64_t)(uintptr_t)ptr, .size = size_recorded};
    (void)pthread_mutex_lock(&realloc_lock);
    atomic_fetch_add_explicit(&reallocs_in_flight, 1, memory_order_seq_cst);
    my_realloc_in_flight = true;
    void *p = real.realloc(ptr, size);
    e.result = (uint64_t)(uintptr_t)p;
    stamp(&e);
    my_realloc_in_flight = false;
    atomic_fetch_sub_explicit(&reallocs_in_flight, 1, memory_order_seq_cst);
    (void)pthread_mutex_unlock(&realloc_lock);
    append(&e);
    return p;
}

/* A bootstrap block grown or shrunk: moved to the real allocator, recorded
 * as a malloc (the bootstrap block never was). */
static void *realloc_from_bootstrap(void *ptr, size_t size)
{
    size_t old_size;
    memcpy(&old_size, (unsigned char *)ptr - 16, sizeof old_size);
    void *p = malloc(size);
    if (p != NULL) {
        memcpy(p, ptr, old_size < size ? old_size : size);
    }
    return p;
}

void *realloc(void *ptr, size_t size)
{
    if (needs_bootstrap()) {
        return bootstrap_alloc(size); /* dlsym does not realloc; never reached in practice */
    }
    if (UNLIKELY(in_bootstrap(ptr))) {
        return realloc_from_bootstrap(ptr, size);
    }
    if (!tracing()) {
        return real.realloc(ptr, size);
    }
    return traced_realloc(ptr, size, size);
}

/* glibc's own reallocarray is not called: it calls realloc, which would be
 * ours again. The overflow check, then realloc, is all it does; an overflow
 * is recorded as a failed realloc of 2^64 - 1 bytes. */
void *reallocarray(void *ptr, size_t count, size_t size)
{
    size_t total;
    if (__builtin_mul_overflow(count, size, &total)) {
        if (!needs_bootstrap() && !in_bootstrap(ptr) && tracing()) {
            event e = {.op = PK_TRACE_REALLOC, .old = (uint64_t)(uintptr_t)ptr, .size = UINT64_MAX};
            stamp(&e);
            append(&e);
        }
        errno = ENOMEM;
        return NULL;
    }
    return realloc(ptr, total);
}

int posix_memalign(void **out, size_t align, size_t size)
{
    if (needs_bootstrap()) {
        return ENOMEM;
    }
    int status = real.posix_memalign(out, align, size);
    if (tracing()) {
        record_allocation(PK_TRACE_ALIGNED, size, align, status == 0 ? *out : NULL);
    }
    return status;
}

void *aligned_alloc(size_t align, size_t size)
{
    if (needs_bootstrap()) {
        return NULL;
    }
    void *p = real.aligned_alloc(align, size);
    if (tracing()) {
        record_allocation(PK_TRACE_ALIGNED, size, align, p);
    }
    return p;
}

void *memalign(size_t align, size_t size)
{
    if (needs_bootstrap()) {
        return NULL;
    }
    void *p = real.memalign(align, size);
    if (tracing()) {
        record_allocation(PK_TRACE_ALIGNED, size, align, p);
    }
    return p;
}

void *valloc(size_t size)
{
    if (needs_bootstrap()) {
        return NULL;
    }
    void *p = real.valloc(size);
    if (tracing()) {
        record_allocation(PK_TRACE_ALIGNED, size, (uint64_t)sysconf(_SC_PAGESIZE), p);
    }
    return p;
}

void *pvalloc(size_t size)
{
    if (needs_bootstrap()) {
        return NULL;
    }
    void *p = real.pvalloc(size);
    if (tracing()) {
        uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
        uint64_t rounded = size > UINT64_MAX - (page - 1) ? UINT64_MAX : (size + page - 1) / page * page;
        record_allocation(PK_TRACE_ALIGNED, rounded, page, p);
    }
    return p;
}
