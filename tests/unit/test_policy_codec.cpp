// Table-driven tests of the policy delegation codec: valid, pipelined and split requests, every
// malformation, limits, addresses, replies.
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "frontends/policy_codec.hpp"

namespace rp::frontends {
namespace {

using namespace std::string_literals;

// A Postfix 3.7-like request (~30 attributes) for `addr`.
std::string postfix_request(const std::string& addr, const std::string& state = "RCPT") {
    return "request=smtpd_access_policy\nprotocol_state=" + state +
           "\nprotocol_name=ESMTP\nhelo_name=laptop.example.org\nqueue_id=8045F2AB23\n"
           "sender=alice@example.org\nrecipient=bob@example.net\nrecipient_count=0\n"
           "client_address=" + addr +
           "\nclient_name=unknown\nreverse_client_name=unknown\ninstance=123.456.7\n"
           "sasl_method=\nsasl_username=\nsasl_sender=\nsize=12345\nccert_subject=\nccert_issuer=\n"
           "ccert_fingerprint=\nencryption_protocol=\nencryption_cipher=\nencryption_keysize=0\n"
           "etrn_domain=\nstress=\nccert_pubkey_fingerprint=\nclient_port=1234\npolicy_context=\n"
           "server_address=198.51.100.1\nserver_port=25\ncompatibility_level=3.6\nmail_version=3.7.11\n\n";
}

// Feeds `chunks` in order and describes every step that produced something:
// "RCPT|192.0.2.1|31" for a request, "error: ..." for an error (then stops).
std::vector<std::string> run(const std::vector<std::string>& chunks, PolicyCodecLimits limits = {}) {
    PolicyParser p(limits);
    std::vector<std::string> out;
    for (const auto& chunk : chunks) {
        std::string_view in(chunk);
        while (!in.empty()) {
            const auto s = p.feed(in);
            EXPECT_LE(s.consumed, in.size());
            in.remove_prefix(s.consumed);
            if (s.kind == PolicyParser::Step::Kind::request) {
                const auto& r = p.request();
                out.push_back(std::string(r.protocol_state) + "|" + std::string(r.client_address) + "|" +
                              std::to_string(r.attribute_count));
            } else if (s.kind == PolicyParser::Step::Kind::error) {
                out.push_back("error: " + std::string(describe(p.error())));
                return out;
            } else {
                EXPECT_TRUE(in.empty());
                break;
            }
        }
    }
    return out;
}

std::vector<std::string> run(const std::string& whole, PolicyCodecLimits limits = {}) {
    return run(std::vector<std::string>{whole}, limits);
}

std::string err(PolicyError e) { return "error: " + std::string(describe(e)); }

struct Case {
    const char* name;
    std::string input;
    std::vector<std::string> expected;
    PolicyCodecLimits limits{};
};

TEST(PolicyCodec, Table) {
    const PolicyCodecLimits small{100, 4};
    const std::vector<Case> cases = {
        {"postfix request", postfix_request("192.0.2.7"), {"RCPT|192.0.2.7|31"}},
        {"minimal", "request=smtpd_access_policy\n\n", {"||1"}},
        {"order irrelevant", "client_address=192.0.2.1\nprotocol_state=RCPT\nrequest=smtpd_access_policy\n\n",
         {"RCPT|192.0.2.1|3"}},
        {"unknown attributes ignored", "x=1\nrequest=smtpd_access_policy\nfoo_bar=\nclient_address=192.0.2.1\n\n",
         {"|192.0.2.1|4"}},
        {"repeated name keeps last",
         "request=smtpd_access_policy\nclient_address=192.0.2.1\nclient_address=192.0.2.2\n\n", {"|192.0.2.2|3"}},
        {"value may contain =", "request=smtpd_access_policy\nsender=a=b@example.org\n\n", {"||2"}},
        {"long unknown name", "request=smtpd_access_policy\n" + std::string(200, 'n') + "=v\n\n", {"||2"}},
        {"name that extends a known one", "request=smtpd_access_policy\nclient_address_x=192.0.2.9\n\n", {"||2"}},
        {"empty client_address", "request=smtpd_access_policy\nprotocol_state=CONNECT\nclient_address=\n\n",
         {"CONNECT||3"}},
        {"crlf tolerated", "request=smtpd_access_policy\r\nclient_address=192.0.2.1\r\n\r\n", {"|192.0.2.1|2"}},
        {"overlong address is dropped", "request=smtpd_access_policy\nclient_address=" + std::string(100, '1') + "\n\n",
         {"||2"}},
        {"pipelined", postfix_request("192.0.2.1") + postfix_request("2001:db8::1", "MAIL") + postfix_request(""),
         {"RCPT|192.0.2.1|31", "MAIL|2001:db8::1|31", "RCPT||31"}},
        {"valid then malformed", postfix_request("192.0.2.1") + "garbage\n\n",
         {"RCPT|192.0.2.1|31", err(PolicyError::line_without_equals)}},
        {"missing =", "request=smtpd_access_policy\nclient_address\n\n", {err(PolicyError::line_without_equals)}},
        {"lone cr line is not the end", "request=smtpd_access_policy\n\r\r\n\n", {err(PolicyError::line_without_equals)}},
        {"empty name", "request=smtpd_access_policy\n=x\n\n", {err(PolicyError::empty_name)}},
        {"nul in value", "request=smtpd_access_policy\nsender=a\0b\n\n"s, {err(PolicyError::nul_byte)}},
        {"nul in name", "request=smtpd_access_policy\nsen\0der=a\n\n"s, {err(PolicyError::nul_byte)}},
        {"missing request", "client_address=192.0.2.1\n\n", {err(PolicyError::bad_request_type)}},
        {"wrong request", "request=junk\nclient_address=192.0.2.1\n\n", {err(PolicyError::bad_request_type)}},
        {"request with trailing text", "request=smtpd_access_policy \n\n", {err(PolicyError::bad_request_type)}},
        {"lone empty line", "\n", {err(PolicyError::bad_request_type)}},
        {"binary junk", "\x01\x02\xff\xfe garbage \x80\n\x7f"s, {err(PolicyError::line_without_equals)}},
        {"http", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", {err(PolicyError::line_without_equals)}},
        {"incomplete yields nothing", "request=smtpd_access_policy\nclient_address=192.0.2.1\n", {}},
        {"attributes at the limit", "request=smtpd_access_policy\na=1\nb=2\nc=3\n\n", {"||4"}, small},
        {"too many attributes", "request=smtpd_access_policy\na=1\nb=2\nc=3\nd=4\n\n",
         {err(PolicyError::too_many_attributes)}, small},
        {"bytes at the limit", "request=smtpd_access_policy\nx=" + std::string(68, 'v') + "\n\n", {"||2"}, small},
        {"one byte over the limit", "request=smtpd_access_policy\nx=" + std::string(69, 'v') + "\n\n",
         {err(PolicyError::request_too_large)}, small},
        {"endless line", "request=smtpd_access_policy\nx=" + std::string(100000, 'v'),
         {err(PolicyError::request_too_large)}},
        {"too many attributes at defaults", [] {
             std::string s = "request=smtpd_access_policy\n";
             for (int i = 0; i < 128; ++i) s += "a=1\n";
             return s + "\n";
         }(),
         {err(PolicyError::too_many_attributes)}},
        {"16 KiB request accepted at defaults",
         "request=smtpd_access_policy\nx=" + std::string(16 * 1024 - 28 - 4, 'v') + "\n\n", {"||2"}},
    };
    for (const auto& c : cases) {
        EXPECT_EQ(run(c.input, c.limits), c.expected) << c.name;
    }
}

TEST(PolicyCodec, SplitAtEveryBytePosition) {
    const std::string stream = postfix_request("192.0.2.1") + postfix_request("::ffff:198.51.100.9", "DATA") +
                               "request=smtpd_access_policy\r\nclient_address=2001:db8::2\r\n\r\n";
    const std::vector<std::string> expected = {"RCPT|192.0.2.1|31", "DATA|::ffff:198.51.100.9|31", "|2001:db8::2|2"};
    ASSERT_EQ(run(stream), expected);
    for (std::size_t k = 0; k <= stream.size(); ++k) {
        EXPECT_EQ(run({stream.substr(0, k), stream.substr(k)}), expected) << "split at " << k;
    }
    std::vector<std::string> bytes;
    for (char ch : stream) bytes.emplace_back(1, ch);
    EXPECT_EQ(run(bytes), expected);
}

TEST(PolicyCodec, LimitsHoldAcrossSplits) {
    const PolicyCodecLimits small{100, 4};
    const std::string over = "request=smtpd_access_policy\nx=" + std::string(69, 'v') + "\n\n";
    for (std::size_t k = 0; k <= over.size(); ++k) {
        EXPECT_EQ(run({over.substr(0, k), over.substr(k)}, small),
                  std::vector<std::string>{err(PolicyError::request_too_large)})
            << "split at " << k;
    }
    // The byte budget is per request: many requests in a row never add up.
    std::string many;
    for (int i = 0; i < 50; ++i) many += "request=smtpd_access_policy\nclient_address=192.0.2.1\n\n";
    EXPECT_EQ(run(many, small).size(), 50u);
}

TEST(PolicyCodec, ClientAddress) {
    struct Row {
        const char* value;
        std::optional<std::string> expected;  // canonical address, or nothing (answer DUNNO)
    };
    const Row rows[] = {
        {"192.0.2.7", "192.0.2.7"},
        {"2001:db8::1", "2001:db8::1"},
        {"2001:DB8:0:0:0:0:0:1", "2001:db8::1"},
        {"::ffff:192.0.2.7", "192.0.2.7"},
        {"", std::nullopt},
        {"unknown", std::nullopt},
        {"192.0.2", std::nullopt},
        {"192.0.2.07", std::nullopt},
        {"192.0.2.7 ", std::nullopt},
        {"fe80::1%eth0", std::nullopt},
    };
    for (const auto& row : rows) {
        PolicyParser p;
        const std::string req = "request=smtpd_access_policy\nclient_address=" + std::string(row.value) + "\n\n";
        const auto s = p.feed(req);
        ASSERT_EQ(s.kind, PolicyParser::Step::Kind::request) << row.value;
        const auto a = p.request().client();
        ASSERT_EQ(a.has_value(), row.expected.has_value()) << row.value;
        if (a) {
            EXPECT_EQ(a->to_string(), *row.expected) << row.value;
        }
    }
    PolicyParser p;
    ASSERT_EQ(p.feed("request=smtpd_access_policy\n\n").kind, PolicyParser::Step::Kind::request);
    EXPECT_FALSE(p.request().client().has_value());  // absent
}

TEST(PolicyCodec, ErrorIsStickyUntilReset) {
    PolicyParser p;
    EXPECT_EQ(p.feed("junk\n").kind, PolicyParser::Step::Kind::error);
    const auto again = p.feed("request=smtpd_access_policy\n\n");
    EXPECT_EQ(again.kind, PolicyParser::Step::Kind::error);
    EXPECT_EQ(again.consumed, 0u);
    p.reset();
    EXPECT_EQ(p.error(), PolicyError::none);
    EXPECT_EQ(p.feed("request=smtpd_access_policy\n\n").kind, PolicyParser::Step::Kind::request);
    EXPECT_EQ(p.feed("").kind, PolicyParser::Step::Kind::need_more);
}

class SetOracle final : public PermitOracle {
public:
    std::set<core::Address> permitted;
    Verdict check(const core::Address& a) const override {
        Verdict v;
        if (permitted.count(a) != 0) v.kind = Verdict::Kind::permit;
        return v;
    }
};

TEST(PolicyCodec, Replies) {
    EXPECT_EQ(policy_reply(true), "action=OK\n\n");
    EXPECT_EQ(policy_reply(false), "action=DUNNO\n\n");
    Verdict v;
    EXPECT_EQ(policy_reply(v), "action=DUNNO\n\n");
    v.kind = Verdict::Kind::static_allow;
    EXPECT_EQ(policy_reply(v), "action=OK\n\n");

    SetOracle oracle;
    oracle.permitted.insert(*core::Address::parse("192.0.2.7"));
    const auto decide = [&](const std::string& addr) {
        PolicyParser p;
        EXPECT_EQ(p.feed("request=smtpd_access_policy\nclient_address=" + addr + "\n\n").kind,
                  PolicyParser::Step::Kind::request);
        return policy_permits(p.request(), oracle);
    };
    EXPECT_TRUE(decide("192.0.2.7"));
    EXPECT_TRUE(decide("::ffff:192.0.2.7"));
    EXPECT_FALSE(decide("192.0.2.8"));
    EXPECT_FALSE(decide(""));
    EXPECT_FALSE(decide("garbage"));
}

}  // namespace
}  // namespace rp::frontends
