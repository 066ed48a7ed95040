#include "thread_failures.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>

static pthread_mutex_t failure_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned failure_count;
static char failure_text[256];

void thread_fail_at(int line, const char *fmt, ...)
{
    pthread_mutex_lock(&failure_lock);
    if (failure_count++ == 0) {
        int n = snprintf(failure_text, sizeof failure_text, "line %d: ", line);
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(failure_text + n, sizeof failure_text - (size_t)n, fmt, ap);
        va_end(ap);
    }
    pthread_mutex_unlock(&failure_lock);
}

unsigned thread_failures_take(char *text, size_t size)
{
    pthread_mutex_lock(&failure_lock);
    unsigned count = failure_count;
    if (text != NULL && size > 0) {
        snprintf(text, size, "%s", count != 0 ? failure_text : "");
    }
    failure_count = 0;
    pthread_mutex_unlock(&failure_lock);
    return count;
}
