// The Prometheus text exposition format 0.0.4 of DaemonStats (GET /metrics). Pure.
//
// Labels name configured things only (source, server, frontend, export, refusal reason, answer),
// never a user or an address: the series stay few whatever the traffic, and the page gives away
// nothing about who is logged in. Metric names and their meaning: docs/metrics.md.
// Thread-safety: pure functions.
// Security: label values come from the configuration and pattern names (and error texts are not
// used at all); they are escaped per the format (backslash, double quote, line feed), so no value
// can break out of its label.
#pragma once

#include <string>
#include <string_view>

#include "daemon/daemon_stats.hpp"

namespace rp::daemon {

// The Content-Type of the page.
inline constexpr std::string_view k_metrics_content_type = "text/plain; version=0.0.4; charset=utf-8";

// A label value as written between double quotes: \ -> \\, " -> \", LF -> \n.
std::string escape_label_value(std::string_view v);

// The whole page: one # HELP and # TYPE per family, families in a fixed order, every sample of a
// family together.
std::string format_metrics(const DaemonStats& s);

}  // namespace rp::daemon
