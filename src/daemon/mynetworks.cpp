#include "daemon/mynetworks.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

#include "util/log.hpp"

namespace rp::daemon {

using util::Level;
using util::log;

std::vector<core::Cidr> postfix_mynetworks() {
    std::vector<core::Cidr> out;
    FILE* p = popen("postconf -h mynetworks 2>/dev/null", "r");
    if (!p) {
        log(Level::warning, "ignore_mynetworks: cannot run postconf: {}", std::strerror(errno));
        return out;
    }
    std::string text;
    char buf[4096];
    std::size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) text.append(buf, n);
    if (pclose(p) != 0) {
        log(Level::warning, "ignore_mynetworks: postconf -h mynetworks failed; nothing added to ignore");
        return out;
    }
    std::string item;
    auto flush = [&] {
        if (item.empty()) return;
        std::string_view v = item;
        // Postfix writes IPv6 networks as [2001:db8::]/32.
        std::string plain;
        if (v.starts_with("[")) {
            const auto close = v.find(']');
            if (close != std::string_view::npos) plain = std::string(v.substr(1, close - 1)) + std::string(v.substr(close + 1));
        } else {
            plain = item;
        }
        if (auto c = core::Cidr::parse(plain)) out.push_back(*c);
        else if (auto c2 = core::Cidr::parse(plain.substr(0, plain.find('/'))); c2 && plain.find('/') != std::string::npos) {
            // host bits set ("10.1.2.3/8"): Postfix accepts it; use the network
            auto len = std::stoi(plain.substr(plain.find('/') + 1));
            if (len >= 0 && len <= c2->network().bits()) out.emplace_back(c2->network(), len);
        } else log(Level::warning, "ignore_mynetworks: skipping '{}' (not a network)", item);
        item.clear();
    };
    for (char ch : text) {
        if (ch == ' ' || ch == ',' || ch == '\n' || ch == '\t') flush();
        else item += ch;
    }
    flush();
    return out;
}

}  // namespace rp::daemon
