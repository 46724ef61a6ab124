// Libraries that only some features need are opened when a feature first needs them, not when
// the binary starts. Each brings its own dependencies, and loading them costs every start of
// every command, `scan` and the per-login `allow --chain`/`check --chain` included: libpq and the
// MariaDB client ~25 more libraries (OpenSSL, Kerberos, LDAP, SASL, ~5 ms), GnuTLS (the syslog
// source's tls: listeners; its constructor alone ~5 ms) and libsystemd (the journald source).
// A host that uses none of those features does not even need them installed. The headers still
// define the functions' types at build time.
// Thread-safety: load_api_once is safe from any thread (a function-local static); the api it
// fills is written once, before the first caller returns, and only read afterwards.
#pragma once

#include <dlfcn.h>

#include <string>

#include "core/result.hpp"

namespace rp::util {

// dlopen(soname), with an error that names the Debian package to install.
core::Result<void*> open_library(const std::string& soname, const std::string& package);

// Looks `name` up in `lib` into `fn`; an error names the library and the symbol.
template <class F>
core::Status load_symbol(void* lib, const std::string& soname, const char* name, F& fn) {
    fn = reinterpret_cast<F>(::dlsym(lib, name));
    if (!fn) return core::make_error(soname + " has no function " + name + " (too old?)");
    return core::ok();
}

// Opens `soname` once (per Api type) and fills `api` through fill(); later calls return the
// first result. Api is a struct of function pointers, declared with RP_DYNLIB_DECLARE, and
// fill loads each with RP_DYNLIB_LOAD (the names `lib`, `soname` and `out` are its parameters).
template <class Api>
core::Status load_api_once(const std::string& soname, const std::string& package, Api& api,
                           core::Status (*fill)(void* lib, const std::string& soname, Api& api)) {
    static const core::Status loaded = [&]() -> core::Status {
        auto lib = open_library(soname, package);
        if (!lib) return lib.error();
        return fill(*lib, soname, api);
    }();
    return loaded;
}

#define RP_DYNLIB_DECLARE(f) decltype(&::f) f = nullptr;
#define RP_DYNLIB_LOAD(f) \
    if (auto st = ::rp::util::load_symbol(lib, soname, #f, out.f); !st) return st;

}  // namespace rp::util
