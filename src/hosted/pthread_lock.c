#include "poolkit/pthread_lock.h"

static void mutex_lock(void *ctx)
{
    (void)pthread_mutex_lock((pthread_mutex_t *)ctx);
}

static void mutex_unlock(void *ctx)
{
    (void)pthread_mutex_unlock((pthread_mutex_t *)ctx);
}

pk_lock pk_pthread_lock(pthread_mutex_t *m)
{
    pk_lock l = {mutex_lock, mutex_unlock, m};
    return l;
}
