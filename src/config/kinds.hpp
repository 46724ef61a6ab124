// Kinds: the enumerated values of the configuration, each parsed once from its name.
//
// Every enumeration here has one name table (kinds.cpp, k_*_names), in enum order; the config
// parser turns a name into the enum once and code past config/ switches on the enum, never on a
// name. to_string() gives the name back (logs, `config show`, status); operator== with a
// string_view compares against the name, for tests and messages only.
// Adding a kind: add the enumerator and its name at the same position, then its registry row
// (keys_sources.cpp, keys_exports.cpp or keys_frontends.cpp; see ARCHITECTURE.md, "Adding a kind").
// Thread-safety: constant data.
#pragma once

#include <optional>
#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace rp::config {

// [[source]] type.
// The drop-in protocols (drac, whoson, relay-ctrl-udp) answer their own clients (docs/dropins.md).
enum class SourceType { file, fifo, syslog, journald, dovecot_auth_policy, drac, whoson, relay_ctrl_udp };
// [[pattern]] role: one-line servers use login; two-line servers a session and a session-login.
enum class PatternRole { login, session, session_login };
// store_outage: lookups while a shared store is unreachable.
enum class StoreOutage { dunno, cache };
// log_level: the lowest level logged.
enum class LogLevel { debug, info, notice, warning, error };
// [[export]] type.
enum class ExportType {
    postfix_cdb,
    postfix_lmdb,
    postfix_hash,
    sendmail_access,
    tcprules_cdb,
    relay_ctrl_dir,
    opensmtpd_table
};
// [limits] window: how a budget's period is counted.
enum class LimitWindow { sliding, fixed };
// The MTA frontend tables, in the order `status` lists them.
enum class FrontendType { policy, socketmap, readsocket, opensmtpd };

// The names, in enum order (index = static_cast<size_t>(enum)).
std::span<const std::string_view> names_of(SourceType);
std::span<const std::string_view> names_of(PatternRole);
std::span<const std::string_view> names_of(StoreOutage);
std::span<const std::string_view> names_of(LogLevel);
std::span<const std::string_view> names_of(ExportType);
std::span<const std::string_view> names_of(FrontendType);
std::span<const std::string_view> names_of(LimitWindow);

template <typename E>
std::string_view to_string(E e) {
    return names_of(E{})[static_cast<std::size_t>(e)];
}

// The enum named `name`; nullopt when no kind has that name.
template <typename E>
std::optional<E> from_string(std::string_view name) {
    const auto names = names_of(E{});
    for (std::size_t i = 0; i < names.size(); ++i)
        if (names[i] == name) return static_cast<E>(i);
    return std::nullopt;
}

// Every value of E, in order (registry walks).
template <typename E>
std::vector<E> all_of() {
    std::vector<E> out;
    for (std::size_t i = 0; i < names_of(E{}).size(); ++i) out.push_back(static_cast<E>(i));
    return out;
}

// "file, fifo, syslog, journald or dovecot-auth-policy": for error messages.
template <typename E>
std::string names_list(E) {
    const auto names = names_of(E{});
    std::string out;
    for (std::size_t i = 0; i < names.size(); ++i) {
        if (i > 0) out += i + 1 == names.size() ? " or " : ", ";
        out += names[i];
    }
    return out;
}

// Comparison with a name and printing: for tests (EXPECT_EQ(c.type, "file")) and messages.
#define RP_CONFIG_KIND_OPS(E)                                                                          \
    inline bool operator==(E e, std::string_view name) { return to_string(e) == name; }               \
    inline std::ostream& operator<<(std::ostream& os, E e) { return os << to_string(e); }
RP_CONFIG_KIND_OPS(SourceType)
RP_CONFIG_KIND_OPS(PatternRole)
RP_CONFIG_KIND_OPS(StoreOutage)
RP_CONFIG_KIND_OPS(LogLevel)
RP_CONFIG_KIND_OPS(ExportType)
RP_CONFIG_KIND_OPS(FrontendType)
RP_CONFIG_KIND_OPS(LimitWindow)
#undef RP_CONFIG_KIND_OPS

}  // namespace rp::config
