// The public headers compile as C++ (-pedantic) and PK_POOL_DEFINE works there.
#include "poolkit/poolkit.h"

PK_POOL_DEFINE(cxx_pool, 40, 8, 0);

int main()
{
    void *block = pk_pool_alloc(&cxx_pool);
    if (block == nullptr || pk_pool_capacity(&cxx_pool) != 8) {
        return 1;
    }
    return pk_pool_free(&cxx_pool, block) == PK_OK ? 0 : 1;
}
