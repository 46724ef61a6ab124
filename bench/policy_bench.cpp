// policy_bench: requests/s and latency of the Postfix policy service, next to a minimal
// single-threaded epoll responder measured in the same run.
//
// In one process it starts (a) the reference: one thread, raw epoll, reads, counts blank-line
// terminated requests and writes "action=DUNNO\n\n" for each, one write per read; and (b) a
// PolicyFrontend on its own util::EventLoop thread with a fake oracle holding a few permits.
// A load generator (one epoll thread, so that with 2 cores server and client each get one) keeps
// N persistent connections, each sending a Postfix-sized request (31 attributes, ~630 bytes) and
// waiting for the reply before the next, for a fixed time per case; then it prints req/s, p50
// and p99 latency, and the ratio to the reference, as a Markdown table.
// All of that but the policy protocol itself is in load_generator.hpp, shared with socketmap_bench.
//
// Usage: policy_bench [--duration SECONDS] [--clients 8,64] [--rounds N] [--connect HOST:PORT]
//   --connect  measure an external `relaypermit run` policy endpoint instead of the in-process
//              frontend (loopback only; its oracle decides what it answers).
#include <cstddef>
#include <cstring>
#include <string>
#include <string_view>

#include "frontends/policy_frontend.hpp"
#include "load_generator.hpp"

namespace {

using rp::bench::client_address;

// Finds the end of a request or reply: an empty line.
struct BlankLine {
    bool last_nl = false;  // the previous byte was '\n'
    bool ends_at(char ch) {
        const bool nl = ch == '\n';
        if (nl && last_nl) {
            last_nl = false;
            return true;
        }
        last_nl = nl;
        return false;
    }
};

// The Postfix policy delegation protocol, as load_generator.hpp wants it.
struct PolicyProtocol {
    // A Postfix 3.7 request as in SMTPD_POLICY_README (31 attributes).
    static std::string request(int i) {
        return "request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\n"
               "helo_name=client-host.example.org\nqueue_id=8045F2AB23\nsender=alice@example.org\n"
               "recipient=bob@example.net\nrecipient_count=0\nclient_address=" + client_address(i) +
               "\nclient_name=client-host.example.org\nreverse_client_name=client-host.example.org\n"
               "instance=123.456.7\nsasl_method=\nsasl_username=\nsasl_sender=\nsize=12345\n"
               "ccert_subject=\nccert_issuer=\nccert_fingerprint=\nencryption_protocol=TLSv1.3\n"
               "encryption_cipher=TLS_AES_256_GCM_SHA384\nencryption_keysize=256\netrn_domain=\nstress=\n"
               "ccert_pubkey_fingerprint=\nclient_port=54321\npolicy_context=\nserver_address=198.51.100.1\n"
               "server_port=25\ncompatibility_level=3.6\nmail_version=3.7.11\n\n";
    }

    static constexpr std::string_view reference_reply = "action=DUNNO\n\n";

    struct RequestCounter {
        BlankLine end;
        std::size_t count(const char* data, std::size_t n) {
            std::size_t requests = 0;
            for (std::size_t k = 0; k < n; ++k)
                if (end.ends_at(data[k])) ++requests;
            return requests;
        }
    };

    struct ReplyReader {
        BlankLine end;
        bool first_byte = true;
        bool ok = false;
        bool consume(const char* data, std::size_t n) {
            bool complete = false;
            for (std::size_t k = 0; k < n; ++k) {
                if (first_byte) {
                    ok = n - k >= 9 && std::memcmp(data + k, "action=OK", 9) == 0;
                    first_byte = false;
                }
                if (end.ends_at(data[k])) {
                    complete = true;
                    first_byte = true;
                }
            }
            return complete;
        }
    };
};

}  // namespace

int main(int argc, char** argv) {
    return rp::bench::run_bench<PolicyProtocol, rp::frontends::PolicyFrontend>(argc, argv, "policy_bench",
                                                                                "PolicyFrontend");
}
