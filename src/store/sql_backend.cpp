#include "store/sql_backend.hpp"

namespace rp::store {

core::Status SqlBackend::open_session(const Schema& schema) {
    disconnect();
    if (auto st = open_connection(); !st) return st;
    prepare_session();
    if (auto st = run_settings(session_settings()); !st) return st;
    if (auto st = ensure_schema(schema); !st) return disconnect_with(st);
    return core::ok();
}

core::Status SqlBackend::open_read_only(std::span<const char* const> settings) {
    disconnect();
    if (auto st = open_connection(); !st) return st;
    return run_settings(settings);
}

core::Status SqlBackend::run_settings(std::span<const char* const> settings) {
    for (const char* setting : settings)
        if (auto st = command(setting); !st) return disconnect_with(st);
    return core::ok();
}

core::Error SqlBackend::fail(const std::string& what) const {
    return core::make_error("store " + url_.redacted() + ": " + what);
}

bool parse_sql_i64(std::string_view s, std::int64_t& out) {
    if (s.empty()) return false;
    const bool neg = s.front() == '-';
    if (neg) s.remove_prefix(1);
    if (s.empty() || s.size() > 18) return false;
    std::int64_t v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return false;
        v = v * 10 + (c - '0');
    }
    out = neg ? -v : v;
    return true;
}

}  // namespace rp::store
