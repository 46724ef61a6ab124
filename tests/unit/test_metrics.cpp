// The [metrics] listener's pure parts and its server: the HTTP codec as rows (and fed one byte at
// a time), the response framing, label escaping, the exposition page of a DaemonStats, the
// health verdict and the status reply rendered from the same stats; then MetricsServer over a
// real loopback socket.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "daemon/daemon_stats.hpp"
#include "daemon/metrics_http.hpp"
#include "daemon/metrics_server.hpp"
#include "daemon/metrics_text.hpp"
#include "stream_test_client.hpp"

namespace {

using rp::daemon::MetricsHttpCodec;
using Kind = MetricsHttpCodec::Result::Kind;
using namespace std::chrono_literals;

struct CodecRow {
    const char* what;
    std::string input;
    std::string want;  // "Mg" metrics GET, "Hh" health HEAD, "E404", "" (need more)
};

std::string outcome(const MetricsHttpCodec::Result& r) {
    if (r.kind == Kind::need_more) return "";
    if (r.kind == Kind::error) return "E" + std::to_string(r.status);
    return std::string(r.route == rp::daemon::MetricsRoute::metrics ? "M" : "H") + (r.head ? "h" : "g");
}

TEST(MetricsHttpTest, RoutesGetAndHeadOfTwoPathsOnly) {
    const std::vector<CodecRow> rows = {
        {"scrape", "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:9310\r\nAccept: text/plain\r\n\r\n", "Mg"},
        {"health HEAD", "HEAD /health HTTP/1.1\r\n\r\n", "Hh"},
        {"a query is ignored", "GET /health?x=1 HTTP/1.0\r\n\r\n", "Hg"},
        {"bare LF", "GET /metrics HTTP/1.1\nHost: x\n\n", "Mg"},
        {"incomplete", "GET /metrics HTTP/1.1\r\nHost: x\r\n", ""},
        {"other path", "GET /admin HTTP/1.1\r\n\r\n", "E404"},
        {"prefix of a path", "GET /metricsx HTTP/1.1\r\n\r\n", "E404"},
        {"POST", "POST /metrics HTTP/1.1\r\n\r\n", "E405"},
        {"DELETE elsewhere", "DELETE /x HTTP/1.1\r\n\r\n", "E404"},
        {"a body", "GET /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", "E413"},
        {"chunked", "GET /metrics HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", "E400"},
        {"garbage", std::string("\x16\x03\x01\x02\x00 hello\r\n\r\n", 15), "E400"},
        {"HTTP/2", "GET /metrics HTTP/2.0\r\n\r\n", "E400"},
        {"folded header", "GET /metrics HTTP/1.1\r\nX: a\r\n b\r\n\r\n", "E400"},
        {"huge header", "GET /metrics HTTP/1.1\r\nX: " + std::string(9000, 'a') + "\r\n\r\n", "E400"},
        {"huge, unfinished", "GET /metrics HTTP/1.1\r\nX: " + std::string(9000, 'a'), "E400"},
    };
    for (const auto& r : rows) {
        MetricsHttpCodec whole;
        EXPECT_EQ(outcome(whole.feed(r.input)), r.want) << r.what;
        MetricsHttpCodec bytes;
        std::string got;
        for (const char c : r.input)
            if (auto o = outcome(bytes.feed(std::string_view(&c, 1))); !o.empty()) got += o;
        EXPECT_EQ(got, r.want) << r.what << " (one byte at a time)";
    }
}

TEST(MetricsHttpTest, OneOutcomePerConnection) {
    MetricsHttpCodec c;
    EXPECT_EQ(outcome(c.feed("GET /metrics HTTP/1.1\r\n\r\nGET /health HTTP/1.1\r\n\r\n")), "Mg");
    EXPECT_EQ(outcome(c.feed("GET /health HTTP/1.1\r\n\r\n")), "") << "pipelined requests are not served";
}

TEST(MetricsHttpTest, ResponsesAreFramedAndHeadHasNoBody) {
    const auto get = rp::daemon::metrics_http_response(200, "text/plain", "abc\n", false);
    EXPECT_EQ(get, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 4\r\nCache-Control: no-store\r\n"
                   "Connection: close\r\n\r\nabc\n");
    const auto head = rp::daemon::metrics_http_response(503, "application/json", "{}\n", true);
    EXPECT_TRUE(head.starts_with("HTTP/1.1 503 Service Unavailable\r\n"));
    EXPECT_NE(head.find("Content-Length: 3\r\n"), std::string::npos);
    EXPECT_TRUE(head.ends_with("\r\n\r\n")) << "no body after the headers";
    EXPECT_NE(rp::daemon::metrics_http_error(405).find("Allow: GET, HEAD\r\n"), std::string::npos);
}

TEST(MetricsTextTest, EscapesLabelValues) {
    EXPECT_EQ(rp::daemon::escape_label_value("plain:/var/log/mail.log"), "plain:/var/log/mail.log");
    EXPECT_EQ(rp::daemon::escape_label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
}

rp::daemon::DaemonStats sample_stats() {
    rp::daemon::DaemonStats s;
    s.version = "1.2.3";
    s.uptime_s = 60;
    s.permits = 2;
    s.grants = 3;
    s.extends = 1;
    s.refused[static_cast<std::size_t>(rp::daemon::Refusal::ignored)] = 5;
    rp::daemon::SourceStats src;
    src.name = "file:/var/log/mail.log";
    src.counters.lines = 100;
    src.counters.matches = 4;
    src.counters.filtered = 90;
    src.counters.unread_bytes = 4096;
    src.grants = 4;
    src.lag_seconds = 1.5;
    s.sources.push_back(src);
    rp::daemon::SourceStats odd;
    odd.name = "we\"ird\\name\n";
    odd.problem = "its logins cannot be recorded (retrying)";
    s.sources.push_back(odd);
    rp::daemon::FrontendStats fe;
    fe.name = "policy";
    fe.counters.requests = 10;
    fe.counters.permitted = 7;
    s.frontends.push_back(fe);
    s.grants_by_server[{"file:/var/log/mail.log", "dovecot"}] = 4;
    rp::exports::ExportStatus ex;
    ex.name = "postfix-cdb:/etc/postfix/relaypermit";
    ex.writes = 2;
    ex.failures = 1;
    ex.failing = true;
    ex.last_error = "cannot rename: Permission denied";
    ex.last_success = rp::core::from_unix_seconds(1700000000);
    s.exports.push_back(ex);
    return s;
}

// The page's samples as "name{labels}" -> value text, and every family's # TYPE line count.
struct Parsed {
    std::map<std::string, std::string> samples;
    std::map<std::string, int> types, helps;
};
Parsed parse(const std::string& page) {
    Parsed p;
    std::istringstream in(page);
    std::string line;
    while (std::getline(in, line)) {
        if (line.starts_with("# TYPE ")) ++p.types[line.substr(7, line.find(' ', 7) - 7)];
        else if (line.starts_with("# HELP ")) ++p.helps[line.substr(7, line.find(' ', 7) - 7)];
        else if (!line.empty()) p.samples[line.substr(0, line.rfind(' '))] = line.substr(line.rfind(' ') + 1);
    }
    return p;
}

TEST(MetricsTextTest, PageHasEveryFamilyOnceAndTheCounters) {
    const auto page = rp::daemon::format_metrics(sample_stats());
    const auto p = parse(page);
    for (const auto& [name, n] : p.types) {
        EXPECT_EQ(n, 1) << name;
        EXPECT_EQ(p.helps.count(name), 1U) << name;
    }
    const std::map<std::string, std::string> want = {
        {"relaypermit_build_info{version=\"1.2.3\"}", "1"},
        {"relaypermit_permits", "2"},
        {"relaypermit_grants_total{source=\"file:/var/log/mail.log\",server=\"dovecot\"}", "4"},
        {"relaypermit_permit_changes_total{change=\"created\"}", "3"},
        {"relaypermit_refused_total{reason=\"ignored\"}", "5"},
        {"relaypermit_lookups_total{frontend=\"policy\",answer=\"permitted\"}", "7"},
        {"relaypermit_lookups_total{frontend=\"policy\",answer=\"not_permitted\"}", "3"},
        {"relaypermit_source_lines_total{source=\"file:/var/log/mail.log\",kind=\"filtered\"}", "90"},
        {"relaypermit_source_lag_seconds{source=\"file:/var/log/mail.log\"}", "1.5"},
        {"relaypermit_source_unread_bytes{source=\"file:/var/log/mail.log\"}", "4096"},
        {"relaypermit_source_up{source=\"we\\\"ird\\\\name\\n\"}", "0"},
        {"relaypermit_store_available{store=\"embedded\"}", "1"},
        {"relaypermit_store_queue_length", "0"},
        {"relaypermit_export_failures_total{export=\"postfix-cdb:/etc/postfix/relaypermit\"}", "1"},
        {"relaypermit_export_failing{export=\"postfix-cdb:/etc/postfix/relaypermit\"}", "1"},
        {"relaypermit_export_last_success_timestamp_seconds{export=\"postfix-cdb:/etc/postfix/relaypermit\"}", "1700000000"},
    };
    for (const auto& [k, v] : want) {
        ASSERT_TRUE(p.samples.count(k)) << k << "\n" << page;
        EXPECT_EQ(p.samples.at(k), v) << k;
    }
    EXPECT_EQ(p.samples.count("relaypermit_source_lag_seconds{source=\"we\\\"ird\\\\name\\n\"}"), 0U) << "unknown lag: no sample";
    EXPECT_EQ(page.find("Permission denied"), std::string::npos) << "error texts are not labels";
}

TEST(HealthTest, NamesEveryProblem) {
    auto s = sample_stats();
    auto h = rp::daemon::assess_health(s);
    EXPECT_FALSE(h.ok);
    ASSERT_EQ(h.reasons.size(), 2U);
    EXPECT_NE(h.reasons[0].find("its logins cannot be recorded"), std::string::npos);
    EXPECT_NE(h.reasons[1].find("export postfix-cdb:/etc/postfix/relaypermit write failing"), std::string::npos);
    const auto json = nlohmann::json::parse(rp::daemon::health_json(h));
    EXPECT_EQ(json["status"], "unavailable");
    EXPECT_EQ(json["reasons"].size(), 2U);

    s.sources.pop_back();
    s.exports.clear();
    EXPECT_TRUE(rp::daemon::assess_health(s).ok);
    EXPECT_EQ(rp::daemon::health_json(rp::daemon::assess_health(s)), "{\"status\":\"ok\"}\n");
    s.store.shared = true;
    s.store.available = false;
    s.store.last_error = "connect 127.0.0.1:1: Connection refused";
    h = rp::daemon::assess_health(s);
    ASSERT_FALSE(h.ok);
    EXPECT_EQ(h.reasons.front(), "shared store unavailable: connect 127.0.0.1:1: Connection refused");
    s.store = {};
    s.missing_frontends = {"socketmap"};
    EXPECT_EQ(rp::daemon::assess_health(s).reasons, std::vector<std::string>{"frontend socketmap is not listening"});
}

TEST(HealthTest, StatusReplyComesFromTheSameStats) {
    const auto j = rp::daemon::status_json(sample_stats());
    EXPECT_EQ(j["permits"], 2);
    EXPECT_EQ(j["sources"][0]["grants"], 4);
    EXPECT_EQ(j["sources"][0]["lag_s"], 1.5);
    EXPECT_EQ(j["sources"][0]["unread_bytes"], 4096);
    EXPECT_EQ(j["sources"][1]["problem"], "its logins cannot be recorded (retrying)");
    EXPECT_EQ(j["exports"][0]["failures"], 1);
    EXPECT_EQ(j["refused"]["ignored"], 5);
}

TEST(MetricsConfigTest, ListenAndAllowFromOffByDefault) {
    auto none = rp::config::parse_config("state_dir = \"/tmp/x\"\n", "t.toml");
    ASSERT_TRUE(none) << none.error().message;
    EXPECT_TRUE(none->metrics.listen.empty());
    auto on = rp::config::parse_config("[metrics]\nlisten = [\"127.0.0.1:9310\", \"unix:/run/rp/metrics.sock\"]\n"
                                       "allow_from = [\"192.0.2.0/24\"]\n", "t.toml");
    ASSERT_TRUE(on) << on.error().message;
    EXPECT_EQ(on->metrics.listen.size(), 2U);
    ASSERT_EQ(on->metrics.allow_from.size(), 1U);
    EXPECT_EQ(on->metrics.allow_from[0].to_string(), "192.0.2.0/24");
    auto no_policy = rp::config::parse_config("[policy]\nlisten = []\n", "t.toml");  // documented: the policy service off
    ASSERT_TRUE(no_policy) << no_policy.error().message;
    EXPECT_TRUE(no_policy->policy.listen.empty());
    for (const char* bad : {"[metrics]\nlisten = [\"udp:127.0.0.1:9310\"]\n", "[metrics]\nport = 9310\n",
                            "[metrics]\nallow_from = [\"not-a-net\"]\n", "metrics = 1\n"}) {
        auto r = rp::config::parse_config(bad, "t.toml");
        ASSERT_FALSE(r) << bad;
        EXPECT_NE(r.error().message.find("t.toml:"), std::string::npos) << r.error().message;
    }
}

class MetricsServerTest : public rp::frontends::streamtest::StreamFrontendTest {};

TEST_F(MetricsServerTest, AnswersOneRequestPerConnectionAndSurvivesBadClients) {
    int asked = 0;
    rp::daemon::MetricsServer server(loop_, {}, [&](rp::daemon::MetricsRoute r) {
        ++asked;
        return rp::daemon::MetricsReply{r == rp::daemon::MetricsRoute::health ? 503 : 200, "text/plain", "body\n"};
    });
    ASSERT_TRUE(server.listen({"127.0.0.1:0"}));
    const auto ep = server.local_endpoints().at(0);

    rp::frontends::streamtest::StreamClient idle(ep);  // connects and says nothing
    rp::frontends::streamtest::StreamClient garbage(ep);
    garbage.send(std::string("\x16\x03\x01\x00\x05hello\r\n\r\n", 14));
    ASSERT_TRUE(wait_eof(garbage));
    EXPECT_TRUE(garbage.received.starts_with("HTTP/1.1 400 ") || garbage.received.empty()) << garbage.received;

    rp::frontends::streamtest::StreamClient scrape(ep);
    scrape.send("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    ASSERT_TRUE(wait_eof(scrape));
    EXPECT_TRUE(scrape.received.starts_with("HTTP/1.1 200 OK\r\n")) << scrape.received;
    EXPECT_TRUE(scrape.received.ends_with("\r\n\r\nbody\n"));

    rp::frontends::streamtest::StreamClient health(ep);
    health.send("HEAD /health HTTP/1.1\r\n\r\n");
    ASSERT_TRUE(wait_eof(health));
    EXPECT_TRUE(health.received.starts_with("HTTP/1.1 503 ")) << health.received;
    EXPECT_TRUE(health.received.ends_with("\r\n\r\n"));
    EXPECT_EQ(asked, 2);
    EXPECT_EQ(server.stats().malformed, 1U);
    server.close();
}

TEST_F(MetricsServerTest, ClosesAClientThatNeverCompletesARequest) {
    rp::daemon::MetricsServer server(
        loop_, {}, [](rp::daemon::MetricsRoute) { return rp::daemon::MetricsReply{200, "text/plain", ""}; }, 50ms);
    ASSERT_TRUE(server.listen({"127.0.0.1:0"}));
    rp::frontends::streamtest::StreamClient slow(server.local_endpoints().at(0));
    slow.send("GET /metr");
    ASSERT_TRUE(wait_eof(slow));
    EXPECT_EQ(slow.received, "");
    EXPECT_EQ(server.stats().accept.closed_idle, 1U);
}

}  // namespace
