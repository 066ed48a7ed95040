/* The default fault handler of hosted builds: one line on stderr, written with
 * write(2) (never stdio), so it is safe inside a malloc replacement; and that
 * write, which the malloc drop-in's reports use too. */
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
    pk__write_all(STDERR_FILENO, line, len);
}

void pk__write_all(int fd, const char *text, size_t length)
{
    while (length > 0) {
        ssize_t n = write(fd, text, length);
        if (n <= 0) {
            return;
        }
        text += n;
        length -= (size_t)n;
    }
}
