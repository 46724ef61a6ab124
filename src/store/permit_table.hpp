// PermitTable: the in-memory permit index every store serves lookups from.
//
// Lookups never touch disk: the embedded store (and later the shared stores' caches) keep the
// whole table here and write through to durable storage. A permit's key is a network: a host
// route, or an IPv6 prefix when ipv6_prefix < 128. find() tries, for each prefix length present
// in the table (usually one or two), the client address masked to that length: O(#lengths).
// A permit is live while now < expires; expired entries are never returned, purged or not.
// Thread-safety: not thread-safe; the daemon owns it on its loop thread.
#pragma once

#include <map>
#include <optional>
#include <span>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/login_event.hpp"

namespace rp::store {

class PermitTable {
public:
    enum class Change { created, extended, unchanged };

    // Merges `p`: a new network is created; an existing one takes p's user, source and times
    // when p.expires is later (extended); otherwise nothing changes. A stored permit that has
    // already expired is replaced. Returns what happened and the stored permit after the merge.
    std::pair<Change, core::Permit> merge(const core::Permit& p, core::Time now);

    // What a batch merge replaced, so a store whose durable write failed can put memory back.
    struct Undo {
        std::vector<std::pair<core::Cidr, std::optional<core::Permit>>> before;  // in merge order
        bool empty() const { return before.empty(); }
    };
    // merge() for each permit, in order; records in `undo` what each change replaced.
    std::vector<std::pair<Change, core::Permit>> merge_all(std::span<const core::Permit> permits, core::Time now,
                                                           Undo& undo);
    void rollback(const Undo& undo);

    // The live permit covering `a`, the most specific one when several do.
    std::optional<core::Permit> find(const core::Address& a, core::Time now) const;

    // The stored permit for exactly this network (any liveness).
    std::optional<core::Permit> find_exact(const core::Cidr& net) const;
    void remove_exact(const core::Cidr& net) { erase(net); }

    // Removes and returns permits covering `a` (any liveness).
    std::vector<core::Permit> remove_covering(const core::Address& a);
    // Removes and returns permits inside `net` (any liveness).
    std::vector<core::Permit> remove_within(const core::Cidr& net);
    std::vector<core::Permit> remove_user(std::string_view user);
    // Removes and returns permits with expires <= now.
    std::vector<core::Permit> remove_expired(core::Time now);

    std::vector<core::Permit> live(core::Time now) const;  // sorted by network
    std::optional<core::Time> next_expiry() const;
    std::size_t size() const { return by_net_.size(); }
    void clear();

private:
    void erase(const core::Cidr& net);
    std::unordered_map<core::Cidr, core::Permit, core::CidrHash> by_net_;
    std::multimap<core::Time, core::Cidr> by_expiry_;
    std::map<int, std::size_t> v4_lengths_, v6_lengths_;  // prefix length -> count, most specific last
};

}  // namespace rp::store
