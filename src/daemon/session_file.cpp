#include "daemon/session_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "util/small_file.hpp"

namespace rp::daemon {
namespace {

using nlohmann::json;

std::optional<Session> decode_line(std::string_view line) {
    const auto j = json::parse(line.begin(), line.end(), nullptr, false);
    if (!j.is_object()) return std::nullopt;
    auto str = [&](const char* k) -> const std::string* {
        auto it = j.find(k);
        return it != j.end() && it->is_string() ? it->get_ptr<const std::string*>() : nullptr;
    };
    auto num = [&](const char* k) -> std::optional<std::int64_t> {
        auto it = j.find(k);
        if (it == j.end() || !it->is_number_integer()) return std::nullopt;
        return it->get<std::int64_t>();
    };
    const auto *server = str("server"), *id = str("id"), *net = str("net"), *user = str("user"), *source = str("source");
    const auto login = num("login_us"), cap = num("cap_us");
    if (!server || !id || !net || !user || !source || !login || !cap || server->empty() || id->empty()) return std::nullopt;
    if (server->find('\0') != std::string::npos || id->find('\0') != std::string::npos) return std::nullopt;
    auto cidr = core::Cidr::parse(*net);
    if (!cidr) return std::nullopt;
    return Session{*server, *id, *cidr, *user, *source, core::from_unix_micros(*login), core::from_unix_micros(*cap)};
}

}  // namespace

std::string encode_sessions(const std::vector<Session>& sessions) {
    std::string out;
    for (const auto& s : sessions) {
        const json j = {{"server", s.server}, {"id", s.id}, {"net", s.network.to_string()}, {"user", s.user},
                        {"source", s.source}, {"login_us", core::to_unix_micros(s.login)},
                        {"cap_us", core::to_unix_micros(s.cap)}};
        // Replace invalid UTF-8 (a user name from a log line) rather than throw.
        out += j.dump(-1, ' ', false, json::error_handler_t::replace);
        out += '\n';
    }
    return out;
}

DecodedSessions decode_sessions(std::string_view text) {
    DecodedSessions out;
    while (!text.empty()) {
        const auto nl = text.find('\n');
        const auto line = text.substr(0, nl);
        text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
        if (line.empty()) continue;
        if (auto s = decode_line(line)) out.sessions.push_back(std::move(*s));
        else ++out.malformed;
    }
    return out;
}

core::Result<DecodedSessions> read_session_file(const std::string& path) {
    auto text = util::read_private_file(path, k_max_session_file_bytes);
    if (!text) return text.error();
    if (!*text) return DecodedSessions{};
    return decode_sessions(**text);
}

core::Status write_session_file(const std::string& path, const std::string& text) {
    const std::string tmp = path + ".tmp";
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) return core::make_error(tmp + ": " + std::strerror(errno));
    std::size_t off = 0;
    while (off < text.size()) {
        const auto n = ::write(fd, text.data() + off, text.size() - off);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            const int e = errno;
            ::close(fd);
            return core::make_error(tmp + ": " + std::strerror(e));
        }
        off += static_cast<std::size_t>(n);
    }
    if (::fsync(fd) != 0 || ::close(fd) != 0) return core::make_error(tmp + ": " + std::strerror(errno));
    if (::rename(tmp.c_str(), path.c_str()) != 0) return core::make_error(path + ": " + std::strerror(errno));
    return core::ok();
}

void SessionFileWriter::start(std::string path) {
    stop();
    std::lock_guard lk(mu_);
    path_ = std::move(path);
    stop_ = false;
    thread_ = std::thread([this] { run(); });
}

void SessionFileWriter::save(std::vector<Session> sessions) {
    {
        std::lock_guard lk(mu_);
        pending_ = std::move(sessions);
    }
    cv_.notify_one();
}

void SessionFileWriter::stop() {
    {
        std::lock_guard lk(mu_);
        stop_ = true;
    }
    cv_.notify_one();
    if (thread_.joinable()) thread_.join();
}

void SessionFileWriter::run() {
    std::unique_lock lk(mu_);
    for (;;) {
        cv_.wait(lk, [&] { return stop_ || pending_; });
        if (!pending_) return;  // stopping with nothing left to write
        auto sessions = std::move(*pending_);
        pending_.reset();
        lk.unlock();
        const auto st = write_session_file(path_, encode_sessions(sessions));
        lk.lock();
        (st ? writes_ : failures_)++;
    }
}

std::uint64_t SessionFileWriter::failures() const {
    std::lock_guard lk(mu_);
    return failures_;
}

std::uint64_t SessionFileWriter::writes() const {
    std::lock_guard lk(mu_);
    return writes_;
}

}  // namespace rp::daemon
