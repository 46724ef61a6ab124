// RedisBackend: the shared permit table in Redis (`store = redis://[user:pass@]host:port/db`),
// through hiredis 0.14's synchronous API. docs/store-redis.md describes the design for operators.
//
// Layout: one string key per permit, `<prefix>permit:<network>` (Cidr::to_string, so a host route
// is the bare address), whose value is `1:<granted_us>:<expires_us>:<user length>:<user><source>`
// (length-prefixed, so a user or source holding any bytes round-trips) and whose PEXPIREAT is the
// permit's expiry rounded up to the millisecond: Redis drops expired permits itself.
// upsert and remove are Lua scripts touching exactly one key (Redis Cluster routes them by that
// key), so the merge is atomic against every other daemon; the same script PUBLISHes the change
// on `<prefix>changes:<db>` (pub/sub ignores database numbers, so the channel carries it) as
// `u <network> <value>` or `r <network> <value as removed>`.
// Two connections: commands (blocking, with a timeout) and a subscriber whose fd is change_fd();
// read_changes() reads the subscriber with MSG_DONTWAIT and returns whatever is complete.
// Budget counters (docs/limits.md) are plain integers `<prefix>budget:<key>:<window>` changed by
// INCRBY (atomic) with PEXPIREAT at the end of the window after theirs.
// hiredis 0.14 has no TLS: rediss:// and ?tls are refused with what to do instead.
// Thread-safety: one thread (the SharedStore worker) uses a backend.
#include <hiredis/hiredis.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <algorithm>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "store/shared_backend.hpp"

namespace rp::store {
namespace {

using core::make_error;

constexpr int kDefaultPort = 6379;
constexpr long kDefaultTimeoutMs = 2000;
constexpr std::string_view kDefaultPrefix = "relaypermit:";
constexpr std::size_t kScanCount = 500;       // budget counters' SCAN
constexpr std::size_t kSnapshotScanCount = 5000;  // keys per round trip of a snapshot
constexpr int kMaxReadsPerCall = 64;  // 1 MiB per read_changes(); the fd stays readable for more

// KEYS[1] the permit key. ARGV: 1 encoded value, 2 expires_us, 3 expires_ms (PEXPIREAT),
// 4 now_us, 5 channel, 6 network. Returns 1 when stored (and announced), 0 when unchanged.
// Microsecond times are below 2^53 until the year 2255, so Lua's doubles hold them exactly.
constexpr std::string_view kUpsertScript = R"lua(
local new_exp = tonumber(ARGV[2])
local now = tonumber(ARGV[4])
if new_exp <= now then return 0 end
local cur = redis.call('GET', KEYS[1])
if cur then
  local exp = tonumber(string.match(cur, '^1:%-?%d+:(%-?%d+):'))
  if exp and exp > now and new_exp <= exp then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('PEXPIREAT', KEYS[1], ARGV[3])
redis.call('PUBLISH', ARGV[5], 'u ' .. ARGV[6] .. ' ' .. ARGV[1])
return 1
)lua";

// KEYS[1] the permit key. ARGV: 1 channel, 2 network. Returns 1 when removed, 0 when absent.
constexpr std::string_view kRemoveScript = R"lua(
local cur = redis.call('GET', KEYS[1])
if not cur then return 0 end
redis.call('DEL', KEYS[1])
redis.call('PUBLISH', ARGV[1], 'r ' .. ARGV[2] .. ' ' .. cur)
return 1
)lua";

struct ReplyFree {
    void operator()(redisReply* r) const {
        if (r) freeReplyObject(r);
    }
};
using Reply = std::unique_ptr<redisReply, ReplyFree>;

struct ContextFree {
    void operator()(redisContext* c) const {
        if (c) redisFree(c);
    }
};
using Context = std::unique_ptr<redisContext, ContextFree>;

std::string_view reply_text(const redisReply& r) { return {r.str ? r.str : "", r.str ? r.len : 0}; }

// Decimal integer followed by ':'; advances `s` past the ':'.
template <typename Int>
std::optional<Int> take_number(std::string_view& s) {
    Int v{};
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || ptr == s.data() + s.size() || *ptr != ':') return std::nullopt;
    s.remove_prefix(static_cast<std::size_t>(ptr - s.data()) + 1);
    return v;
}

std::string encode_value(const core::Permit& p) {
    std::string v = "1:";
    v += std::to_string(core::to_unix_micros(p.granted));
    v += ':';
    v += std::to_string(core::to_unix_micros(p.expires));
    v += ':';
    v += std::to_string(p.user.size());
    v += ':';
    v += p.user;
    v += p.source;
    return v;
}

// A stored value as views into `v` (the snapshot's path: no copies).
struct ValueView {
    std::string_view user, source;
    std::int64_t granted_us, expires_us;
};
std::optional<ValueView> decode_row(std::string_view v) {
    if (v.substr(0, 2) != "1:") return std::nullopt;
    v.remove_prefix(2);
    auto granted = take_number<std::int64_t>(v);
    auto expires = granted ? take_number<std::int64_t>(v) : std::nullopt;
    auto ulen = expires ? take_number<std::size_t>(v) : std::nullopt;
    if (!ulen || *ulen > v.size()) return std::nullopt;
    return ValueView{v.substr(0, *ulen), v.substr(*ulen), *granted, *expires};
}

std::optional<core::Permit> decode_value(std::string_view v, const core::Cidr& net) {
    auto r = decode_row(v);
    if (!r) return std::nullopt;
    return core::Permit{net, std::string(r->user), std::string(r->source), core::from_unix_micros(r->granted_us),
                        core::from_unix_micros(r->expires_us)};
}

// SCAN MATCH treats * ? [ ] \ specially; the prefix is literal.
std::string glob_escape(std::string_view s) {
    std::string out;
    for (char c : s) {
        if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') out += '\\';
        out += c;
    }
    return out;
}

struct RedisConfig {
    std::string user, password;
    std::string host;  // or a unix socket path (starts with '/')
    int port = kDefaultPort;
    long db = 0;
    long timeout_ms = kDefaultTimeoutMs;
    std::string prefix = std::string(kDefaultPrefix);
    std::string describe;
};

class RedisBackend final : public SharedBackend {
public:
    explicit RedisBackend(RedisConfig cfg)
        : cfg_(std::move(cfg)),
          key_prefix_(cfg_.prefix + "permit:"),
          channel_(cfg_.prefix + "changes:" + std::to_string(cfg_.db)) {}

    core::Status connect() override {
        disconnect();
        auto cmd = open("command connection");
        if (!cmd) return cmd.error();
        if (cfg_.db != 0) {
            const std::string db = std::to_string(cfg_.db);
            auto r = run(cmd->get(), {"SELECT", db});
            if (!r) return fail("SELECT " + db + ": " + r.error().message);
        }
        // EVALSHA saves sending the scripts each time; if SCRIPT LOAD is not allowed (ACL) or
        // the server forgets them (restart, failover), eval() falls back to EVAL.
        for (auto [sha, script] : {std::pair{&upsert_sha_, kUpsertScript}, std::pair{&remove_sha_, kRemoveScript}}) {
            auto r = run(cmd->get(), {"SCRIPT", "LOAD", script});
            if (!r && (*cmd)->err) return fail("SCRIPT LOAD: " + r.error().message);  // connection lost
            *sha = r && (*r)->type == REDIS_REPLY_STRING ? std::string(reply_text(**r)) : std::string();
        }

        auto sub = open("subscriber connection");
        if (!sub) return sub.error();
        auto r = run(sub->get(), {"SUBSCRIBE", channel_});
        if (!r) return fail("SUBSCRIBE " + channel_ + ": " + r.error().message);
        cmd_ = std::move(*cmd);
        sub_ = std::move(*sub);
        // A message published right after the confirmation may sit in hiredis's buffer already,
        // where the fd does not show it: the next read_changes() hands it out (and the snapshot
        // the worker reads after connect() contains its effect anyway).
        if (auto s = drain(pending_); !s) {
            disconnect();
            return s.error();
        }
        return core::ok();
    }

    void disconnect() override {
        cmd_.reset();
        sub_.reset();
        pending_.clear();
    }

    core::Result<std::vector<core::Permit>> snapshot(core::Time now) override { return collect_snapshot(now); }

    // SCAN with a large COUNT, then the values of the batch's keys with one MGET (a cluster
    // proxy that refuses a multi-key MGET gets one pipelined GET per key from then on). About
    // two round trips per kSnapshotScanCount keys; a key SCAN returns twice is handed over twice.
    core::Status snapshot_to(core::Time now, const PermitSink& sink) override {
        if (!cmd_) return fail("not connected");
        const std::string pattern = glob_escape(key_prefix_) + "*", count = std::to_string(kSnapshotScanCount);
        const auto now_us = core::to_unix_micros(now);
        std::string cursor = "0";
        do {
            auto r = run(cmd_.get(), {"SCAN", cursor, "MATCH", pattern, "COUNT", count});
            if (!r) return fail("SCAN: " + r.error().message);
            const redisReply& scan = **r;
            if (scan.type != REDIS_REPLY_ARRAY || scan.elements != 2 ||
                scan.element[0]->type != REDIS_REPLY_STRING || scan.element[1]->type != REDIS_REPLY_ARRAY)
                return fail("SCAN: unexpected reply");
            cursor = std::string(reply_text(*scan.element[0]));
            std::vector<std::string_view> keys;
            for (std::size_t i = 0; i < scan.element[1]->elements; ++i)
                if (const redisReply* k = scan.element[1]->element[i]; k->type == REDIS_REPLY_STRING)
                    keys.push_back(reply_text(*k));
            auto values = fetch_values(keys);
            if (!values) return values.error();
            for (std::size_t i = 0; i < keys.size(); ++i) {
                const redisReply* v = (*values)[i];
                if (!v || v->type != REDIS_REPLY_STRING) continue;  // expired, deleted or foreign
                auto net = core::Cidr::parse(keys[i].substr(key_prefix_.size()));
                auto p = net ? decode_row(reply_text(*v)) : std::nullopt;
                if (p && now_us < p->expires_us) sink({*net, p->user, p->source, p->granted_us, p->expires_us});
            }
        } while (cursor != "0");
        return core::ok();
    }

    core::Status upsert(const core::Permit& p) override {
        if (!cmd_) return fail("not connected");
        const std::string net = p.network.to_string();
        const std::int64_t expires_us = core::to_unix_micros(p.expires);
        const std::int64_t expires_ms = expires_us / 1000 + (expires_us % 1000 > 0 ? 1 : 0);
        const std::int64_t now_us = core::to_unix_micros(core::SystemClock().now());
        auto r = eval(upsert_sha_, kUpsertScript, key_prefix_ + net,
                      {encode_value(p), std::to_string(expires_us), std::to_string(expires_ms),
                       std::to_string(now_us), channel_, net});
        if (!r) return fail("upsert " + net + ": " + r.error().message);
        return core::ok();
    }

    core::Status remove(const core::Cidr& network) override {
        if (!cmd_) return fail("not connected");
        const std::string net = network.to_string();
        auto r = eval(remove_sha_, kRemoveScript, key_prefix_ + net, {channel_, net});
        if (!r) return fail("remove " + net + ": " + r.error().message);
        return core::ok();
    }

    int change_fd() const override { return sub_ ? sub_->fd : -1; }

    core::Result<std::vector<Change>> read_changes() override {
        if (!sub_) return fail("not connected");
        std::vector<Change> out = std::move(pending_);
        pending_.clear();
        if (auto s = drain(out); !s) return s.error();
        char buf[16384];
        for (int i = 0; i < kMaxReadsPerCall; ++i) {
            const ssize_t n = ::recv(sub_->fd, buf, sizeof buf, MSG_DONTWAIT);
            if (n > 0) {
                if (redisReaderFeed(sub_->reader, buf, static_cast<std::size_t>(n)) != REDIS_OK)
                    return fail(std::string("subscriber: ") + sub_->reader->errstr);
                if (auto s = drain(out); !s) return s.error();
                continue;
            }
            if (n == 0) return fail("the server closed the subscriber connection");
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            return fail(std::string("subscriber: ") + std::strerror(errno));
        }
        return out;
    }

    core::Status purge(core::Time) override { return core::ok(); }  // PEXPIREAT does it

    // Budget counters: `<prefix>budget:<key>:<window>`, INCRBY then PEXPIREAT, pipelined.
    core::Result<std::vector<CounterRow>> add_counters(std::span<const CounterRow> deltas) override {
        if (!cmd_) return fail("not connected");
        std::vector<std::string> keys;
        for (const auto& d : deltas) {
            keys.push_back(cfg_.prefix + "budget:" + d.key + ":" + std::to_string(d.window));
            const std::string n = std::to_string(d.count);
            const std::string at = std::to_string(core::to_unix_micros(d.expires) / 1000 + 1);
            for (auto args : {std::vector<std::string_view>{"INCRBY", keys.back(), n},
                              std::vector<std::string_view>{"PEXPIREAT", keys.back(), at}}) {
                std::vector<const char*> argv;
                std::vector<std::size_t> lens;
                for (auto a : args) argv.push_back(a.data()), lens.push_back(a.size());
                if (redisAppendCommandArgv(cmd_.get(), static_cast<int>(argv.size()), argv.data(), lens.data()) != REDIS_OK)
                    return fail("INCRBY: " + context_error(cmd_.get()));
            }
        }
        std::vector<CounterRow> out;
        for (const auto& d : deltas) {
            for (int i = 0; i < 2; ++i) {
                void* raw = nullptr;
                if (redisGetReply(cmd_.get(), &raw) != REDIS_OK || !raw) return fail("INCRBY: " + context_error(cmd_.get()));
                Reply r(static_cast<redisReply*>(raw));
                if (r->type == REDIS_REPLY_ERROR) return fail("INCRBY: " + std::string(reply_text(*r)));
                if (i == 0) out.push_back({d.key, d.window, static_cast<std::uint64_t>(std::max<long long>(r->integer, 0)), d.expires});
            }
        }
        return out;
    }

    core::Result<std::vector<CounterRow>> counter_snapshot(core::Time now) override {
        if (!cmd_) return fail("not connected");
        const std::string prefix = cfg_.prefix + "budget:";
        std::vector<CounterRow> out;
        std::string cursor = "0";
        do {
            auto r = run(cmd_.get(), {"SCAN", cursor, "MATCH", glob_escape(prefix) + "*", "COUNT", std::to_string(kScanCount)});
            if (!r || (*r)->type != REDIS_REPLY_ARRAY || (*r)->elements != 2) return fail("SCAN: unexpected reply");
            cursor = std::string(reply_text(*(*r)->element[0]));
            const redisReply& keys = *(*r)->element[1];
            for (std::size_t i = 0; i < keys.elements; ++i) {
                const std::string key(reply_text(*keys.element[i]));
                const auto colon = key.rfind(':');
                std::int64_t win = 0;
                auto [ptr, ec] = std::from_chars(key.data() + colon + 1, key.data() + key.size(), win);
                if (colon == std::string::npos || colon < prefix.size() || ec != std::errc()) continue;
                auto got = run(cmd_.get(), {"GET", key});
                if (!got || (*got)->type != REDIS_REPLY_STRING) continue;  // gone meanwhile, or foreign
                std::uint64_t count = 0;
                const auto v = reply_text(**got);
                std::from_chars(v.data(), v.data() + v.size(), count);
                out.push_back({key.substr(prefix.size(), colon - prefix.size()), win, count, now});
            }
        } while (cursor != "0");
        return out;
    }

    std::string describe() const override { return cfg_.describe; }

private:
    // Every error names the store (without the password) and never contains the password.
    core::Error fail(std::string what) const {
        std::string msg = "redis store " + cfg_.describe + ": " + what;
        if (!cfg_.password.empty()) {
            for (auto pos = msg.find(cfg_.password); pos != std::string::npos;
                 pos = msg.find(cfg_.password, pos + 3))
                msg.replace(pos, cfg_.password.size(), "***");
        }
        return make_error(std::move(msg));
    }

    std::string context_error(const redisContext* c) const {
        if (!c || !c->err) return "connection lost";
        const std::string e = c->errstr;
        if (c->err == REDIS_ERR_IO && e.find("temporarily unavailable") != std::string::npos)
            return "no answer within " + std::to_string(cfg_.timeout_ms) + " ms";
        if (c->err == REDIS_ERR_EOF) return "the server closed the connection";
        return e;
    }

    // One command, binary safe; an error reply is an error.
    core::Result<Reply> run(redisContext* c, std::vector<std::string_view> args) const {
        std::vector<const char*> argv;
        std::vector<std::size_t> lens;
        for (auto a : args) {
            argv.push_back(a.data());
            lens.push_back(a.size());
        }
        void* raw = redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data());
        if (!raw) return make_error(context_error(c));
        Reply r(static_cast<redisReply*>(raw));
        if (r->type == REDIS_REPLY_ERROR) return make_error(std::string(reply_text(*r)));
        return r;
    }

    // The values of `keys` in order (null where a key is gone or holds another type). Any other
    // error fails the whole snapshot: a key skipped on MOVED, ASK, NOPERM or TRYAGAIN would make
    // a partial snapshot pass for complete (and its permits vanish from every cache). The
    // replies are kept in values_ until the next call.
    core::Result<std::vector<const redisReply*>> fetch_values(const std::vector<std::string_view>& keys) {
        values_.clear();
        std::vector<const redisReply*> out(keys.size(), nullptr);
        if (keys.empty()) return out;
        if (use_mget_) {
            std::vector<const char*> argv{"MGET"};
            std::vector<std::size_t> lens{4};
            for (auto k : keys) argv.push_back(k.data()), lens.push_back(k.size());
            Reply r(static_cast<redisReply*>(
                redisCommandArgv(cmd_.get(), static_cast<int>(argv.size()), argv.data(), lens.data())));
            if (!r) return fail("MGET: " + context_error(cmd_.get()));
            if (r->type == REDIS_REPLY_ARRAY && r->elements == keys.size()) {
                for (std::size_t i = 0; i < keys.size(); ++i) out[i] = r->element[i];
                values_.push_back(std::move(r));
                return out;
            }
            if (!mget_refused(*r)) return fail("MGET: unexpected reply: " + reply_summary(*r));
            use_mget_ = false;  // a cluster proxy's CROSSSLOT, or no MGET: one GET per key
        }
        for (auto k : keys)
            if (auto st = append(cmd_.get(), {"GET", k}); !st) return st.error();
        for (std::size_t i = 0; i < keys.size(); ++i) {
            void* raw = nullptr;
            if (redisGetReply(cmd_.get(), &raw) != REDIS_OK || !raw) return fail("GET: " + context_error(cmd_.get()));
            values_.emplace_back(static_cast<redisReply*>(raw));
            const redisReply& v = *values_.back();
            if (v.type == REDIS_REPLY_STRING) out[i] = &v;
            else if (v.type != REDIS_REPLY_NIL && !reply_starts(v, "WRONGTYPE"))  // another type: not ours
                return fail("GET: unexpected reply: " + reply_summary(v));
        }
        return out;
    }

    static bool reply_starts(const redisReply& r, std::string_view word) {
        return r.type == REDIS_REPLY_ERROR && reply_text(r).starts_with(word);
    }
    // MGET itself refused, rather than an answer about the keys.
    static bool mget_refused(const redisReply& r) {
        return reply_starts(r, "CROSSSLOT") || reply_starts(r, "ERR unknown command") ||
               (reply_starts(r, "NOPERM") && reply_text(r).find("'mget'") != std::string_view::npos);
    }
    static std::string reply_summary(const redisReply& r) {
        if (r.type == REDIS_REPLY_ERROR) return std::string(reply_text(r).substr(0, 200));
        return "type " + std::to_string(r.type);
    }

    // Pipelining: queue one command (binary safe).
    core::Status append(redisContext* c, std::initializer_list<std::string_view> args) const {
        const char* argv[8];
        std::size_t lens[8];
        int n = 0;
        for (auto a : args) argv[n] = a.data(), lens[n++] = a.size();
        if (redisAppendCommandArgv(c, n, argv, lens) != REDIS_OK) return fail(std::string(*args.begin()) + ": " + context_error(c));
        return core::ok();
    }

    core::Result<Reply> eval(const std::string& sha, std::string_view script, const std::string& key,
                             const std::vector<std::string>& args) const {
        auto call = [&](std::string_view verb, std::string_view body) {
            std::vector<std::string_view> argv = {verb, body, "1", key};
            for (const auto& a : args) argv.push_back(a);
            return run(cmd_.get(), std::move(argv));
        };
        if (!sha.empty()) {
            auto r = call("EVALSHA", sha);
            if (r || r.error().message.substr(0, 8) != "NOSCRIPT") return r;
        }
        return call("EVAL", script);
    }

    core::Result<Context> open(std::string_view which) const {
        timeval tv{};
        tv.tv_sec = cfg_.timeout_ms / 1000;
        tv.tv_usec = static_cast<suseconds_t>((cfg_.timeout_ms % 1000) * 1000);
        const bool unix_socket = !cfg_.host.empty() && cfg_.host.front() == '/';
        Context c(unix_socket ? redisConnectUnixWithTimeout(cfg_.host.c_str(), tv)
                              : redisConnectWithTimeout(cfg_.host.c_str(), cfg_.port, tv));
        if (!c) return fail("cannot allocate a connection");
        if (c->err) {
            const std::string e = c->errstr;
            if (e.find("temporarily unavailable") != std::string::npos || e.find("timed out") != std::string::npos)
                return fail("cannot connect: no answer within " + std::to_string(cfg_.timeout_ms) + " ms");
            return fail("cannot connect: " + e);
        }
        if (redisSetTimeout(c.get(), tv) != REDIS_OK) return fail("cannot set the timeout: " + context_error(c.get()));
        if (!unix_socket) redisEnableKeepAlive(c.get());  // notices a silently dead subscriber
        if (!cfg_.password.empty()) {
            auto r = cfg_.user.empty() ? run(c.get(), {"AUTH", cfg_.password})
                                       : run(c.get(), {"AUTH", cfg_.user, cfg_.password});
            if (!r) return fail(std::string(which) + ": authentication failed: " + r.error().message);
        }
        return c;
    }

    // Turns every complete reply in the subscriber's buffer into changes.
    core::Status drain(std::vector<Change>& out) const {
        for (;;) {
            void* raw = nullptr;
            if (redisGetReplyFromReader(sub_.get(), &raw) != REDIS_OK)
                return fail("subscriber: " + context_error(sub_.get()));
            if (!raw) return core::ok();
            Reply r(static_cast<redisReply*>(raw));
            if (r->type != REDIS_REPLY_ARRAY || r->elements != 3) continue;
            if (r->element[0]->type != REDIS_REPLY_STRING || reply_text(*r->element[0]) != "message") continue;
            if (r->element[2]->type != REDIS_REPLY_STRING) continue;
            if (auto c = parse_message(reply_text(*r->element[2]))) out.push_back(std::move(*c));
        }
    }

    // "u <network> <value>" or "r <network> <value>"; anything else is ignored.
    static std::optional<Change> parse_message(std::string_view m) {
        if (m.size() < 4 || (m[0] != 'u' && m[0] != 'r') || m[1] != ' ') return std::nullopt;
        const auto space = m.find(' ', 2);
        if (space == std::string_view::npos) return std::nullopt;
        auto net = core::Cidr::parse(m.substr(2, space - 2));
        if (!net) return std::nullopt;
        auto p = decode_value(m.substr(space + 1), *net);
        if (!p) return std::nullopt;
        return Change{m[0] == 'u' ? Change::Kind::upsert : Change::Kind::remove, std::move(*p)};
    }

    RedisConfig cfg_;
    std::string key_prefix_, channel_;
    std::string upsert_sha_, remove_sha_;
    Context cmd_, sub_;
    std::vector<Change> pending_;
    bool use_mget_ = true;
    std::vector<Reply> values_;  // fetch_values()' replies
};

}  // namespace

core::Result<std::unique_ptr<SharedBackend>> make_redis_backend(const StoreUrl& url) {
    const std::string where = "store " + url.redacted() + ": ";
    if (url.scheme == "rediss" || url.params.count("tls") || url.params.count("ssl"))
        return make_error(where + "TLS needs hiredis >= 1.0; Debian 12 has 0.14: use stunnel or a private network "
                                  "(see docs/store-redis.md)");
    if (url.scheme != "redis") return make_error(where + "not a redis:// URL");
    RedisConfig cfg;
    cfg.user = url.user;
    cfg.password = url.password;
    cfg.host = url.host;
    if (!url.user.empty() && url.password.empty())
        return make_error(where + "a Redis ACL user needs a password (redis://user:password@host/0 or "
                                  "store_password_file)");
    if (url.port) cfg.port = url.port;
    if (!url.database.empty()) {
        const auto& d = url.database;
        auto [ptr, ec] = std::from_chars(d.data(), d.data() + d.size(), cfg.db);
        if (ec != std::errc() || ptr != d.data() + d.size() || cfg.db < 0 || cfg.db > 1'000'000)
            return make_error(where + "the database must be a number, e.g. redis://127.0.0.1:6379/0");
    }
    for (const auto& [k, v] : url.params) {
        if (k == "prefix") {
            if (v.empty()) return make_error(where + "prefix must not be empty");
            cfg.prefix = v;
        } else if (k == "timeout") {
            auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), cfg.timeout_ms);
            if (ec != std::errc() || ptr != v.data() + v.size() || cfg.timeout_ms < 1 || cfg.timeout_ms > 3'600'000)
                return make_error(where + "timeout must be milliseconds from 1 to 3600000");
        } else {
            return make_error(where + "unknown parameter '" + k + "' (known: prefix, timeout)");
        }
    }
    // describe(): the URL without the password, the way it could be written back.
    std::string d = "redis://";
    if (!cfg.user.empty()) d += cfg.user + "@";
    if (cfg.host.front() == '/') {
        d += "/" + std::to_string(cfg.db) + "?host=" + cfg.host;
    } else {
        d += cfg.host.find(':') != std::string::npos ? "[" + cfg.host + "]" : cfg.host;
        d += ":" + std::to_string(cfg.port) + "/" + std::to_string(cfg.db);
    }
    if (cfg.prefix != kDefaultPrefix) d += (cfg.host.front() == '/' ? "&prefix=" : "?prefix=") + cfg.prefix;
    cfg.describe = std::move(d);
    return std::unique_ptr<SharedBackend>(std::make_unique<RedisBackend>(std::move(cfg)));
}

}  // namespace rp::store
