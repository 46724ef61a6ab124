#include "store/pg_copy.hpp"

#include <array>
#include <cstdint>
#include <cstring>
#include <optional>

namespace rp::store {
namespace {

using core::make_error;

constexpr std::string_view k_signature{"PGCOPY\n\377\r\n\0", 11};
constexpr std::int64_t k_pg_epoch_us = 946'684'800'000'000;  // 2000-01-01 in Unix microseconds
constexpr std::size_t k_fields = 5;
constexpr std::int32_t k_max_field = 16 << 20;  // bounds what an incomplete row may buffer

std::uint64_t be(const char* p, std::size_t n) {
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < n; ++i) v = v << 8 | static_cast<unsigned char>(p[i]);
    return v;
}

std::optional<core::Cidr> inet(std::string_view v) {
    if (v.size() < 4) return std::nullopt;
    const auto family = static_cast<unsigned char>(v[0]), bits = static_cast<unsigned char>(v[1]),
               n = static_cast<unsigned char>(v[3]);
    if (family == 2 && n == 4 && v.size() == 8 && bits <= 32)
        return core::Cidr(core::Address::v4(static_cast<std::uint32_t>(be(v.data() + 4, 4))), bits);
    if (family == 3 && n == 16 && v.size() == 20 && bits <= 128) {
        std::array<std::uint8_t, 16> b{};
        std::memcpy(b.data(), v.data() + 4, 16);
        const auto a = core::Address::v6(b);  // a v4-mapped address becomes IPv4
        if (a.is_v4()) return bits >= 96 ? std::optional(core::Cidr(a, bits - 96)) : std::nullopt;
        return core::Cidr(a, bits);
    }
    return std::nullopt;
}

}  // namespace

core::Result<std::size_t> PgCopyParser::tuple(std::string_view s, const PermitSink& sink) {
    if (s.size() < 2) return std::size_t{0};
    const auto count = static_cast<std::int16_t>(be(s.data(), 2));
    if (count == -1) {
        finished_ = true;
        return std::size_t{2};
    }
    if (count != static_cast<std::int16_t>(k_fields))
        return make_error("COPY: a row with " + std::to_string(count) + " fields, expected 5");
    std::array<std::string_view, k_fields> f;
    bool null = false;
    std::size_t at = 2;
    for (auto& field : f) {
        if (s.size() - at < 4) return std::size_t{0};
        const auto len = static_cast<std::int32_t>(be(s.data() + at, 4));
        at += 4;
        if (len == -1) {
            null = true;
            continue;
        }
        if (len < 0 || len > k_max_field) return make_error("COPY: a field length of " + std::to_string(len));
        if (s.size() - at < static_cast<std::size_t>(len)) return std::size_t{0};
        field = s.substr(at, static_cast<std::size_t>(len));
        at += static_cast<std::size_t>(len);
    }
    const auto net = null ? std::nullopt : inet(f[0]);
    std::int64_t granted_us = 0, expires_us = 0;
    // A timestamptz of +-infinity is INT64_MAX/MIN: shifting +infinity to the Unix epoch would
    // overflow (undefined behaviour), and no permit is granted at or expires at either infinity.
    const auto us = [](std::string_view v, std::int64_t& out) {
        if (v.size() != 8) return false;
        const auto pg = static_cast<std::int64_t>(be(v.data(), 8));
        return pg != INT64_MIN && pg != INT64_MAX && !__builtin_add_overflow(pg, k_pg_epoch_us, &out);
    };
    if (!net || !us(f[3], granted_us) || !us(f[4], expires_us)) {
        ++skipped_;
        return at;
    }
    sink({*net, f[1], f[2], granted_us, expires_us});
    ++rows_;
    return at;
}

core::Status PgCopyParser::feed(std::string_view chunk, const PermitSink& sink) {
    std::string_view s = chunk;
    if (!buf_.empty()) {
        buf_.append(chunk);
        s = buf_;
    }
    std::size_t used = 0;
    if (!header_) {
        if (s.size() < k_signature.size() + 8) return buf_.empty() ? (buf_.assign(chunk), core::ok()) : core::ok();
        if (s.substr(0, k_signature.size()) != k_signature) return make_error("COPY: not the binary format");
        const std::uint64_t ext = be(s.data() + k_signature.size() + 4, 4);
        if (ext > (1u << 20)) return make_error("COPY: an oversized header extension");
        const std::size_t need = k_signature.size() + 8 + static_cast<std::size_t>(ext);
        if (s.size() < need) return buf_.empty() ? (buf_.assign(chunk), core::ok()) : core::ok();
        used = need;
        header_ = true;
    }
    while (used < s.size()) {
        if (finished_) return make_error("COPY: data after the end marker");
        auto n = tuple(s.substr(used), sink);
        if (!n) return n.error();
        if (*n == 0) break;
        used += *n;
    }
    std::string rest(s.substr(used));
    buf_ = std::move(rest);
    return core::ok();
}

}  // namespace rp::store
