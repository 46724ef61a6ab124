#include "sources/rpcbind_client.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "util/unique_fd.hpp"

namespace rp::sources {
namespace {

using Steady = std::chrono::steady_clock;

int remaining_ms(Steady::time_point end) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - Steady::now()).count();
    return left > 0 ? static_cast<int>(left) : 0;
}

core::Status send_all(int fd, std::string_view data, Steady::time_point end) {
    while (!data.empty()) {
        const ssize_t n = send(fd, data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            data.remove_prefix(static_cast<std::size_t>(n));
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EINTR) return core::make_error(std::string("send: ") + std::strerror(errno));
        pollfd p{fd, POLLOUT, 0};
        if (poll(&p, 1, remaining_ms(end)) <= 0) return core::make_error("timed out");
    }
    return core::ok();
}

core::Result<std::string> read_record(int fd, RecordReader& reader, Steady::time_point end) {
    std::string record;
    char buf[1024];
    for (;;) {
        switch (reader.next(record)) {
            case RecordReader::State::record:
                return record;
            case RecordReader::State::error:
                return core::make_error("oversized reply");
            case RecordReader::State::need_more:
                break;
        }
        pollfd p{fd, POLLIN, 0};
        if (poll(&p, 1, remaining_ms(end)) <= 0) return core::make_error("no answer in time");
        const ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n == 0) return core::make_error("connection closed");
        if (n < 0 && errno != EAGAIN && errno != EINTR) return core::make_error(std::string("recv: ") + std::strerror(errno));
        if (n > 0) reader.feed(std::string_view(buf, static_cast<std::size_t>(n)));
    }
}

}  // namespace

core::Result<std::vector<bool>> rpcbind_exchange(const std::string& socket_path, RpcbProc proc,
                                                 const std::vector<RpcbMapping>& mappings,
                                                 std::chrono::milliseconds deadline) {
    const auto end = Steady::now() + deadline;
    util::UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd) return core::make_error(std::string("socket: ") + std::strerror(errno));
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    if (socket_path.size() >= sizeof sa.sun_path) return core::make_error("socket path too long");
    std::memcpy(sa.sun_path, socket_path.c_str(), socket_path.size() + 1);
    if (connect(fd.get(), reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0 && errno != EINPROGRESS &&
        errno != EAGAIN)
        return core::make_error("connect " + socket_path + ": " + std::strerror(errno));
    std::vector<bool> out;
    RecordReader reader(4096);
    std::uint32_t xid = static_cast<std::uint32_t>(Steady::now().time_since_epoch().count());
    for (const auto& m : mappings) {
        ++xid;
        const auto call = encode_rpcb_call(xid, proc, m.prog, m.vers, m.netid, m.uaddr, "relaypermit");
        if (auto st = send_all(fd.get(), frame_record(call), end); !st) return st.error();
        auto reply = read_record(fd.get(), reader, end);
        if (!reply) return reply.error();
        auto ok = parse_rpcb_reply(*reply, xid);
        if (!ok) return ok.error();
        out.push_back(*ok);
    }
    return out;
}

}  // namespace rp::sources
