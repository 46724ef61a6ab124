// Fuzz target for the control protocol's request codec (daemon/control_codec.hpp): the input is
// cut at '\n' into request lines as the control server cuts them; each is parsed, and the reply
// the server would send (an error reply, or an echo of the parsed fields) is encoded. Checks the
// codec's contract: no exception, every accepted ttl within 1..k_control_max_ttl_ms, every
// accepted user and source short and free of control characters, every reply one line of valid JSON.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "daemon/control_codec.hpp"

namespace {

void check_reply(const std::string& line) {
    if (line.empty() || line.back() != '\n' || line.find('\n') != line.size() - 1) std::abort();
    const auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("ok")) std::abort();
}

void one_request(std::string_view line) {
    auto r = rp::daemon::parse_control_request(line);
    if (!r) {
        check_reply(rp::daemon::control_error_reply(r.error().message));
        return;
    }
    nlohmann::json echo = {{"ok", true}, {"cmd", static_cast<int>(r->cmd)}};
    if (r->ttl) {
        const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(*r->ttl).count();
        if (ms < 1 || ms > rp::daemon::k_control_max_ttl_ms) std::abort();
        echo["ttl_ms"] = ms;
    }
    if (r->user) {
        if (r->user->size() > rp::daemon::k_control_max_user) std::abort();
        for (char ch : *r->user)
            if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f) std::abort();
        echo["user"] = *r->user;
    }
    if (r->source) {
        if (r->source->size() > rp::daemon::k_control_max_source) std::abort();
        for (char ch : *r->source)
            if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f) std::abort();
        echo["source"] = *r->source;
    }
    if (r->network) echo["network"] = r->network->to_string();
    if (r->ip) echo["ip"] = r->ip->to_string();
    check_reply(rp::daemon::encode_control_reply(echo));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);
    while (!in.empty()) {
        const auto nl = in.find('\n');
        one_request(in.substr(0, nl));
        if (nl == std::string_view::npos) break;
        in.remove_prefix(nl + 1);
    }
    return 0;
}
