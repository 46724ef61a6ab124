#include "util/allocator.hpp"

#include <cstddef>  // defines __GLIBC__ on glibc systems
#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace rp::util {

void tune_allocator_for_latency() {
#if defined(__GLIBC__) && defined(M_MXFAST)
    ::mallopt(M_MXFAST, 0);  // no fast bins: no deferred coalescing of a million chunks at once
#endif
}

}  // namespace rp::util
