/* The default fault handler of hosted builds: one line on stderr, written with
 * write(2) (never stdio), so it is safe inside a malloc replacement. */
#include <unistd.h>

#include "core/internal.h"

void pk__fault_print(const pk_fault *f, void *ctx)
{
    (void)ctx;
    char line[512];
    size_t len = pk_fault_format(f, line, sizeof line);
    if (len >= sizeof line) {
        len = sizeof line - 1;
        line[len - 1] = '\n';
    }
    const char *rest = line;
    while (len > 0) {
        ssize_t n = write(STDERR_FILENO, rest, len);
        if (n <= 0) {
            return;
        }
        rest += n;
        len -= (size_t)n;
    }
}
