#include "util/redact.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cstdio>

namespace rp::util {
namespace {

constexpr std::string_view k_mask = "***";

bool scheme_char(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '+' || c == '.' || c == '-';
}

// Length of a leading "scheme:/..." (scheme, colon and the slashes after it), or 0.
std::size_t scheme_prefix(std::string_view url) {
    const auto colon = url.find(':');
    if (colon == 0 || colon == std::string_view::npos || colon + 1 >= url.size() || url[colon + 1] != '/') return 0;
    if (std::isalpha(static_cast<unsigned char>(url[0])) == 0) return 0;
    if (!std::all_of(url.begin(), url.begin() + static_cast<std::ptrdiff_t>(colon), scheme_char)) return 0;
    std::size_t end = colon + 1;
    while (end < url.size() && url[end] == '/') ++end;
    return end;
}

// host[:port] or [v6][:port] with a numeric port or none: nothing secret in it.
bool plain_authority(std::string_view a) {
    std::string_view port;
    if (!a.empty() && a.front() == '[') {
        const auto close = a.find(']');
        if (close == std::string_view::npos) return false;
        port = a.substr(close + 1);
        if (port.empty()) return true;
        if (port.front() != ':') return false;
        port.remove_prefix(1);
    } else {
        const auto colon = a.find(':');
        if (colon == std::string_view::npos) return true;
        port = a.substr(colon + 1);
    }
    return !port.empty() && std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Masks, to the end of `s`, the value of the first secret-named query parameter.
void mask_query(std::string& s, std::size_t from) {
    std::size_t i = s.find('?', from);
    while (i != std::string::npos && i < s.size()) {
        const std::size_t name_start = i + 1;
        const std::size_t eq = s.find('=', name_start);
        const std::size_t amp = s.find('&', name_start);
        if (eq != std::string::npos && (amp == std::string::npos || eq < amp) &&
            is_secret_name(std::string_view(s).substr(name_start, eq - name_start))) {
            s.replace(eq + 1, std::string::npos, k_mask);
            return;
        }
        i = amp;
    }
}

}  // namespace

bool is_secret_name(std::string_view name) {
    std::string lower(name);
    for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    for (const char* word : {"pass", "pwd", "secret", "token"})
        if (lower.find(word) != std::string::npos) return true;
    return false;
}

std::string mask_url(std::string_view url) {
    const std::size_t start = scheme_prefix(url);
    std::string out;
    if (const auto at = url.rfind('@'); at != std::string_view::npos && at >= start) {
        out.append(url.substr(0, start)).append(k_mask).append(url.substr(at));
        mask_query(out, start + k_mask.size());
        return out;
    }
    const auto rest = url.substr(start);
    const auto end = rest.find_first_of("/?#");
    if (!plain_authority(rest.substr(0, end))) return std::string(url.substr(0, start)).append(k_mask);
    out = std::string(url);
    mask_query(out, start);
    return out;
}

std::optional<std::string> secret_file_warning(const std::string& path, std::string_view what) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return std::nullopt;
    if ((st.st_mode & (S_IROTH | S_IWOTH)) == 0) return std::nullopt;
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return std::string(what) + " " + path + " holds a secret and is " +
           ((st.st_mode & S_IROTH) != 0 ? "readable" : "writable") + " by others (mode " + mode +
           "); run chmod o-rw " + path;
}

}  // namespace rp::util
