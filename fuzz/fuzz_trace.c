/* The trace reader (tools/trace/trace.c) on any bytes: it must return 0 or
 * -1 with a message naming a byte offset within the input, never read
 * outside it (ASan), and on success give events sorted by unique seq with
 * missing and threads consistent with them. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "trace/trace.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A copy of exactly size bytes, so that a read past the end is caught. */
    unsigned char *copy = malloc(size == 0 ? 1 : size);
    if (copy == NULL) {
        return 0;
    }
    if (size > 0) {
        memcpy(copy, data, size);
    }
    pk_trace t;
    char err[256];
    if (pk_trace_parse(copy, size, &t, err, sizeof err) == 0) {
        if ((t.count == 0) != (t.threads == 0) || t.version != PK_TRACE_VERSION) {
            abort();
        }
        for (size_t i = 0; i < t.count; i++) {
            if ((i > 0 && t.events[i].seq <= t.events[i - 1].seq) || t.events[i].op < PK_TRACE_MALLOC ||
                t.events[i].op > PK_TRACE_FREE) {
                abort();
            }
        }
        if (t.count > 0 && t.missing != t.events[t.count - 1].seq - (t.count - 1)) {
            abort();
        }
        pk_trace_free(&t);
    } else {
        unsigned long offset;
        char *end;
        if (strncmp(err, "byte ", 5) != 0 || (offset = strtoul(err + 5, &end, 10), *end != ':') || offset > size) {
            abort();
        }
    }
    free(copy);
    return 0;
}
