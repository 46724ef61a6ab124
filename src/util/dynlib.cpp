#include "util/dynlib.hpp"

namespace rp::util {

core::Result<void*> open_library(const std::string& soname, const std::string& package) {
    if (void* lib = ::dlopen(soname.c_str(), RTLD_NOW | RTLD_LOCAL)) return lib;
    const char* why = ::dlerror();
    return core::make_error("cannot load " + soname + " (install the package " + package +
                            "): " + (why ? why : "unknown error"));
}

}  // namespace rp::util
