/* The test traces' writer (trace_writer.h). */
#include "trace_writer.h"

#include <string.h>

static void put_bytes(trace_writer *w, const unsigned char *b, size_t n)
{
    if (fwrite(b, 1, n, w->f) != n) {
        w->failed = 1;
    }
}

static void put_le32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = (unsigned char)(v >> (8 * i));
    }
}

/* Unsigned LEB128: 7 bits a byte, low first, the high bit on all but the last. */
static void put_varint(trace_writer *w, uint64_t v)
{
    unsigned char b[10];
    size_t n = 0;
    do {
        b[n] = (unsigned char)(v & 0x7f);
        v >>= 7;
        if (v != 0) {
            b[n] |= 0x80;
        }
        n++;
    } while (v != 0);
    put_bytes(w, b, n);
}

int trace_writer_start(trace_writer *w, FILE *f, uint32_t version, uint32_t pid)
{
    unsigned char header[32] = {0};
    static const unsigned char magic[8] = {'P', 'K', 'T', 'R', 'A', 'C', 'E', '\n'};
    memcpy(header, magic, sizeof magic);
    put_le32(header + 8, version);
    put_le32(header + 12, 32);
    put_le32(header + 16, pid);
    *w = (trace_writer){f, 0, 0};
    put_bytes(w, header, sizeof header);
    return w->failed ? -1 : 0;
}

int trace_writer_open(trace_writer *w, const char *path, uint32_t version, uint32_t pid)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL) {
        return -1;
    }
    return trace_writer_start(w, f, version, pid);
}

void trace_writer_event(trace_writer *w, uint32_t thread, uint8_t op, uint64_t time_ns, uint64_t size,
                        uint64_t align, uint64_t result, uint64_t old)
{
    const unsigned char marker = 0xB1;
    put_bytes(w, &marker, 1);
    put_varint(w, thread);
    put_varint(w, 1);
    put_bytes(w, &op, 1);
    put_varint(w, w->seq++);
    put_varint(w, time_ns);
    switch (op) {
    case 1: /* malloc */
    case 2: /* calloc */
        put_varint(w, size);
        put_varint(w, result);
        break;
    case 3: /* realloc */
        put_varint(w, old);
        put_varint(w, size);
        put_varint(w, result);
        break;
    case 4: /* aligned */
        put_varint(w, size);
        put_varint(w, align);
        put_varint(w, result);
        break;
    default: /* free */
        put_varint(w, old);
        break;
    }
}

int trace_writer_close(trace_writer *w)
{
    int rc = fclose(w->f) == 0 && !w->failed ? 0 : -1;
    w->f = NULL;
    return rc;
}
