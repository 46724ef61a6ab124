// Libraries that only some features need are opened when a feature first needs them, not when
// the binary starts. Each brings its own dependencies, and loading them costs every start of
// every command, `scan` and the per-login `allow --chain`/`check --chain` included: libpq and the
// MariaDB client ~25 more libraries (OpenSSL, Kerberos, LDAP, SASL, ~5 ms), GnuTLS (the syslog
// source's tls: listeners; its constructor alone ~5 ms) and libsystemd (the journald source).
// A host that uses none of those features does not even need them installed. The headers still
// define the functions' types at build time.
// Thread-safety: load_api_once is safe from any thread (a lock per Api type); the api it fills is
// written before the first successful call returns, and only read afterwards.
#pragma once

#include <dlfcn.h>

#include <mutex>
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

// Opens `soname` and fills `api` through fill(), until that succeeds once; later calls return
// ok at once. A failure is not remembered: a library installed later (e.g. before a reload)
// is found then. Api is a struct of function pointers, one type per library (the lock and the
// flag are per type), declared with RP_DYNLIB_DECLARE; fill loads each with RP_DYNLIB_LOAD (the
// names `lib`, `soname` and `out` are its parameters). Callers use `api` only after a call
// returned ok.
template <class Api>
core::Status load_api_once(const std::string& soname, const std::string& package, Api& api,
                           core::Status (*fill)(void* lib, const std::string& soname, Api& api)) {
    static std::mutex mu;
    static bool loaded = false;
    std::lock_guard lock(mu);
    if (loaded) return core::ok();
    auto lib = open_library(soname, package);
    if (!lib) return lib.error();
    if (auto st = fill(*lib, soname, api); !st) {
        ::dlclose(*lib);
        return st;
    }
    loaded = true;
    return core::ok();
}

#define RP_DYNLIB_DECLARE(f) decltype(&::f) f = nullptr;
#define RP_DYNLIB_LOAD(f) \
    if (auto st = ::rp::util::load_symbol(lib, soname, #f, out.f); !st) return st;

}  // namespace rp::util
