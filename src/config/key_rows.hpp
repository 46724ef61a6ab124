// Key rows: the shape of one registry row, and the parse/show steps most keys share. Private to
// src/config.
//
// A KeyRow<T> reads one key into the struct T (Config, PolicyConfig, SourceConfig, ...) and
// shows it back as TOML. Most rows are built from the templates below over a member pointer:
//   {{"ttl", "duration", "how long a login permits relaying"}, set_duration<&Config::ttl>,
//    show_member<&Config::ttl>}
// A key with rules of its own (store, api_header_file) gives its own function instead.
// parse_table() walks a TOML table over the rows, records every error in the Ctx and goes on.
// Thread-safety: constant data.
#pragma once

#include <span>
#include <string>

#include "config/parse_ctx.hpp"

namespace rp::config {

template <typename T>
struct KeyRow {
    KeyInfo info;
    core::Status (*parse)(T& out, const Ctx& c, const toml::node& n, const std::string& key);
    std::string (*show)(const T& in);
};

template <auto M>
struct MemberOf;
template <typename C, typename V, V C::*M>
struct MemberOf<M> {
    using Class = C;
    using Value = V;
};
template <auto M>
using ClassOf = typename MemberOf<M>::Class;

template <auto M>
std::string show_member(const ClassOf<M>& t) {
    return toml_value(t.*M);
}

// A path that may be unset: "" (not `""`) when empty, which `config show` prints as a comment
// (an empty path would not parse back).
template <auto M>
std::string show_path(const ClassOf<M>& t) {
    return (t.*M).empty() ? std::string() : toml_value(t.*M);
}

template <auto M>
core::Status set_string(ClassOf<M>& t, const Ctx& c, const toml::node& n, const std::string& key) {
    auto s = get_string(c, n, key);
    if (!s) return s.error();
    t.*M = *s;
    return core::ok();
}

// An absolute path (state_dir, control_socket, store_password_file).
template <auto M>
core::Status set_abs_path(ClassOf<M>& t, const Ctx& c, const toml::node& n, const std::string& key) {
    auto s = get_string(c, n, key);
    if (!s) return s.error();
    if (s->empty() || s->front() != '/') return c.err(n, key, "must be an absolute path");
    t.*M = *s;
    return core::ok();
}

// A positive duration; with MinSeconds, at least that many seconds.
template <auto M, int MinSeconds = 0>
core::Status set_duration(ClassOf<M>& t, const Ctx& c, const toml::node& n, const std::string& key) {
    auto d = get_duration(c, n, key);
    if (!d) return d.error();
    if (MinSeconds == 0 && d->count() <= 0) return c.err(n, key, "must be positive");
    if (MinSeconds > 0 && *d < std::chrono::seconds(MinSeconds))
        return c.err(n, key, "must be at least " + std::to_string(MinSeconds) + "s");
    t.*M = *d;
    return core::ok();
}

template <auto M, std::int64_t Lo, std::int64_t Hi>
core::Status set_int(ClassOf<M>& t, const Ctx& c, const toml::node& n, const std::string& key) {
    auto v = get_int(c, n, key, Lo, Hi);
    if (!v) return v.error();
    t.*M = static_cast<typename MemberOf<M>::Value>(*v);
    return core::ok();
}

template <auto M>
core::Status set_bool(ClassOf<M>& t, const Ctx& c, const toml::node& n, const std::string& key) {
    auto b = get_bool(c, n, key);
    if (!b) return b.error();
    t.*M = *b;
    return core::ok();
}

template <auto M>
core::Status set_strings(ClassOf<M>& t, const Ctx& c, const toml::node& n, const std::string& key) {
    auto v = get_strings(c, n, key);
    if (!v) return v.error();
    t.*M = *v;
    return core::ok();
}

template <auto M>
core::Status set_cidrs(ClassOf<M>& t, const Ctx& c, const toml::node& n, const std::string& key) {
    auto v = get_cidrs(c, n, key);
    if (!v) return v.error();
    t.*M = *v;
    return core::ok();
}

// An enumerated value (kinds.hpp), parsed once; the error lists the names.
template <auto M>
core::Status set_enum(ClassOf<M>& t, const Ctx& c, const toml::node& n, const std::string& key) {
    using E = typename MemberOf<M>::Value;
    auto s = get_string(c, n, key);
    if (!s) return s.error();
    auto e = from_string<E>(*s);
    if (!e) return c.err(n, key, "use " + names_list(E{}));
    t.*M = *e;
    return core::ok();
}

template <typename T>
const KeyRow<T>* find_row(std::span<const KeyRow<T>> rows, std::string_view name) {
    for (const auto& r : rows)
        if (r.info.name == name) return &r;
    return nullptr;
}

// Reads every key of `t` through `rows` into `out`; `prefix` names the table in messages
// ("policy." -> "policy.listen"), `set_prefix` in the set keys ("source.0."). `check(row, node,
// key)` may refuse a key (a row that does not apply to this kind; `row` is null for a key without
// a row). Returns false when any key failed (each failure is recorded in `c`).
template <typename T, typename Check>
bool parse_table(T& out, std::span<const KeyRow<T>> rows, const toml::table& t, const Ctx& c,
                 const std::string& prefix, const std::string& set_prefix, Check check) {
    bool ok = true;
    for (const auto& [k, v] : t) {
        const std::string key = prefix + std::string(k.str());
        const auto* row = find_row(rows, k.str());
        core::Status st = check(row, v, key);
        if (st) st = row->parse(out, c, v, key);
        if (!st) {
            c.fail(v, key, st.error());
            ok = false;
        } else {
            c.note_set(set_prefix + std::string(k.str()));
        }
    }
    return ok;
}

template <typename T>
bool parse_table(T& out, std::span<const KeyRow<T>> rows, const toml::table& t, const Ctx& c,
                 const std::string& prefix, const std::string& set_prefix) {
    return parse_table(out, rows, t, c, prefix, set_prefix,
                       [&c](const KeyRow<T>* row, const toml::node& v, const std::string& key) -> core::Status {
                           if (!row) return c.err(v, key, "unknown key");
                           return core::ok();
                       });
}

}  // namespace rp::config
