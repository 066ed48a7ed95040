#include "core/internal.h"

/* The flag that stops a fault raised inside the handler from being dispatched
 * again. Per thread on hosted builds; on bare metal one flag (a fault raised
 * in an interrupt while the handler runs is returned but not dispatched). */
#ifndef PK_THREAD_LOCAL
#if PK_HOSTED && !defined(__STDC_NO_THREADS__)
#define PK_THREAD_LOCAL _Thread_local
#else
#define PK_THREAD_LOCAL
#endif
#endif

#if PK_HOSTED
#define PK__DEFAULT_HANDLER pk__fault_print
#else
static void pk__fault_ignore(const pk_fault *f, void *ctx)
{
    (void)f;
    (void)ctx;
}
#define PK__DEFAULT_HANDLER pk__fault_ignore
#endif

static pk_fault_handler fault_handler = PK__DEFAULT_HANDLER;
static void *fault_ctx;
static PK_THREAD_LOCAL bool in_handler;

void pk_set_fault_handler(pk_fault_handler h, void *ctx)
{
    fault_handler = h != NULL ? h : PK__DEFAULT_HANDLER;
    fault_ctx = h != NULL ? ctx : NULL;
}

pk_status pk__dispatch_fault(const pk_fault *f)
{
    if (in_handler) {
        return f->kind;
    }
    in_handler = true;
    fault_handler(f, fault_ctx);
    in_handler = false;
    return f->kind;
}

pk_status pk_report_fault(pk_status kind, const char *allocator, const void *ptr)
{
    pk_fault f = {kind, allocator, ptr, NULL, 0, NULL, 0, 0};
    return pk__dispatch_fault(&f);
}

/* Appends text to a bounded buffer, counting what did not fit. */
typedef struct {
    char *buf;
    size_t size;
    size_t len;
} pk__line;

static void line_put(pk__line *l, const char *text)
{
    for (; *text != '\0'; text++, l->len++) {
        if (l->len + 1 < l->size) {
            l->buf[l->len] = *text;
        }
    }
}

static void line_put_unsigned(pk__line *l, uintmax_t v, unsigned base)
{
    char digits[sizeof(uintmax_t) * CHAR_BIT + 1];
    size_t i = sizeof digits - 1;
    digits[i] = '\0';
    do {
        digits[--i] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v != 0);
    line_put(l, &digits[i]);
}

static void line_put_site(pk__line *l, const char *file, int line)
{
    line_put(l, file);
    line_put(l, ":");
    line_put_unsigned(l, (uintmax_t)(line < 0 ? 0 : line), 10);
}

size_t pk_fault_format(const pk_fault *f, char *buf, size_t size)
{
    pk__line l = {buf, size, 0};
    line_put(&l, "poolkit: ");
    line_put(&l, f->allocator != NULL ? f->allocator : "?");
    line_put(&l, ": ");
    line_put(&l, pk_status_str(f->kind));
    if (f->ptr != NULL) {
        line_put(&l, " at 0x");
        line_put_unsigned(&l, (uintmax_t)(uintptr_t)f->ptr, 16);
    }
    bool has_site = f->file != NULL;
    bool has_owner = f->owner != 0;
    bool has_call = f->call_file != NULL;
    if (has_site || has_owner || has_call) {
        line_put(&l, " (");
        if (has_site) {
            line_put(&l, "allocated at ");
            line_put_site(&l, f->file, f->line);
        }
        if (has_owner) {
            line_put(&l, has_site ? ", owner " : "owner ");
            line_put_unsigned(&l, f->owner, 10);
        }
        if (has_call) {
            line_put(&l, has_site || has_owner ? "; call at " : "call at ");
            line_put_site(&l, f->call_file, f->call_line);
        }
        line_put(&l, ")");
    }
    line_put(&l, "\n");
    if (size != 0) {
        buf[l.len < size ? l.len : size - 1] = '\0';
    }
    return l.len;
}
