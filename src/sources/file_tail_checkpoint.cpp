#include "sources/file_tail_checkpoint.hpp"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

namespace rp::sources {
namespace {

// Type-checked: the checkpoint is our own data, but a damaged one must not throw.
std::optional<TailPosition> parse_position(const nlohmann::json& j) {
    if (!j.is_object()) return std::nullopt;
    auto num = [&](const char* key, std::uint64_t& out) {
        auto it = j.find(key);
        if (it == j.end() || !it->is_number_unsigned()) return false;
        out = it->get<std::uint64_t>();
        return true;
    };
    TailPosition e;
    if (!num("dev", e.dev) || !num("ino", e.ino) || !num("offset", e.offset) || !num("fp_len", e.fp_len))
        return std::nullopt;
    auto fp = j.find("fp");
    if (fp == j.end() || !fp->is_string()) return std::nullopt;
    e.fp = fp->get<std::string>();
    auto skip = j.find("skip");
    if (skip != j.end()) {
        if (!skip->is_boolean()) return std::nullopt;
        e.skip = skip->get<bool>();
    }
    return e;
}

void put_position(const TailPosition& p, nlohmann::json& j) {
    j["dev"] = p.dev;
    j["ino"] = p.ino;
    j["offset"] = p.offset;
    j["skip"] = p.skip;
    j["fp"] = p.fp;
    j["fp_len"] = p.fp_len;
}

}  // namespace

std::optional<TailCheckpoint> parse_tail_checkpoint(std::string_view text) {
    const auto j = nlohmann::json::parse(text, nullptr, false);
    if (!j.is_object()) return std::nullopt;
    TailCheckpoint cp;
    if (auto d = j.find("draining"); d != j.end()) {
        if (!d->is_array()) return std::nullopt;
        for (const auto& item : *d) {
            auto e = parse_position(item);
            if (!e) return std::nullopt;
            cp.draining.push_back(*e);
        }
    }
    if (j.contains("ino")) {
        cp.current = parse_position(j);
        if (!cp.current) return std::nullopt;
    }
    return cp;
}

std::string format_tail_checkpoint(const TailCheckpoint& cp) {
    nlohmann::json j = nlohmann::json::object();
    j["v"] = 1;
    if (cp.current) put_position(*cp.current, j);
    nlohmann::json d = nlohmann::json::array();
    for (const auto& p : cp.draining) {
        nlohmann::json e = nlohmann::json::object();
        put_position(p, e);
        d.push_back(std::move(e));
    }
    if (!d.empty()) j["draining"] = std::move(d);
    return j.dump();
}

std::string fingerprint(std::string_view bytes) {
    std::uint64_t h = 14695981039346656037ULL;
    for (const char c : bytes) {
        h ^= static_cast<unsigned char>(c);
        h *= 1099511628211ULL;
    }
    return fmt::format("{:016x}", h);
}

}  // namespace rp::sources
