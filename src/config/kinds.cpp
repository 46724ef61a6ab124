#include "config/kinds.hpp"

namespace rp::config {
namespace {

// In enum order: the static_asserts below keep each table as long as its enum.
constexpr std::string_view k_source_names[] = {"file", "fifo", "syslog", "journald", "dovecot-auth-policy",
                                               "drac", "whoson", "relay-ctrl-udp"};
constexpr std::string_view k_role_names[] = {"login", "session", "session-login"};
constexpr std::string_view k_outage_names[] = {"dunno", "cache"};
constexpr std::string_view k_level_names[] = {"debug", "info", "notice", "warning", "error"};
constexpr std::string_view k_export_names[] = {"postfix-cdb",    "postfix-lmdb",   "postfix-hash",   "sendmail-access",
                                               "tcprules-cdb",   "relay-ctrl-dir", "opensmtpd-table"};
constexpr std::string_view k_frontend_names[] = {"policy", "socketmap", "readsocket", "opensmtpd"};
constexpr std::string_view k_window_names[] = {"sliding", "fixed"};

static_assert(std::size(k_source_names) == static_cast<std::size_t>(SourceType::relay_ctrl_udp) + 1);
static_assert(std::size(k_role_names) == static_cast<std::size_t>(PatternRole::session_login) + 1);
static_assert(std::size(k_outage_names) == static_cast<std::size_t>(StoreOutage::cache) + 1);
static_assert(std::size(k_level_names) == static_cast<std::size_t>(LogLevel::error) + 1);
static_assert(std::size(k_export_names) == static_cast<std::size_t>(ExportType::opensmtpd_table) + 1);
static_assert(std::size(k_frontend_names) == static_cast<std::size_t>(FrontendType::opensmtpd) + 1);
static_assert(std::size(k_window_names) == static_cast<std::size_t>(LimitWindow::fixed) + 1);

}  // namespace

std::span<const std::string_view> names_of(SourceType) { return k_source_names; }
std::span<const std::string_view> names_of(PatternRole) { return k_role_names; }
std::span<const std::string_view> names_of(StoreOutage) { return k_outage_names; }
std::span<const std::string_view> names_of(LogLevel) { return k_level_names; }
std::span<const std::string_view> names_of(ExportType) { return k_export_names; }
std::span<const std::string_view> names_of(FrontendType) { return k_frontend_names; }
std::span<const std::string_view> names_of(LimitWindow) { return k_window_names; }

}  // namespace rp::config
