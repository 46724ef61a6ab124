// PermitTable: the in-memory permit index every store serves lookups from.
//
// Lookups never touch disk: the embedded store (and the shared stores' caches) keep the whole
// table here and write to durable storage behind it. A permit's key is a network: a host
// route, or an IPv6 prefix when ipv6_prefix < 128. find() tries, for each prefix length present
// in the table (usually one or two), the client address masked to that length: O(#lengths).
// A permit is live while now < expires; expired entries are never returned, purged or not.
//
// Layout (issue 14: a million permits in well under 150 MB): permits are 48-byte records in
// one dense vector (address as 16 bytes + prefix length, user and source as ids into a
// StringPool, times as microseconds); a FlatIndex (8 bytes a slot) finds a record by network;
// expiry order is a binary min-heap of record numbers (4 bytes each) whose positions the
// records keep, so extending or removing a permit re-sorts in O(log n) with nothing stale left
// behind. Removing moves the last record into the hole. size() is O(1).
//
// Cursors (`list` streaming): a Cursor walks the records in table order, a bounded number per
// scan() call, and stays valid while the table changes between calls. Each permit is visited
// at most once; one that is live from open_cursor() to the end of the walk is visited exactly
// once: when a removal moves a record not yet visited into the part already walked, the table
// (which knows its open cursors) queues that record for the cursor. That queue holds at most
// k_cursor_revisit_max records per cursor (a record moved past it is skipped and counted in
// Cursor::missed), so a cursor's memory is bounded whatever happens meanwhile. Permits created
// during a walk may or may not be visited; clear() ends every walk (nothing more is visited).
// Thread-safety: not thread-safe; the daemon owns it on its loop thread.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "core/login_event.hpp"
#include "store/flat_index.hpp"
#include "store/string_pool.hpp"

namespace rp::store {

class PermitTable {
public:
    enum class Change { created, extended, unchanged, refused };

    // At most this many permits are removed by one remove_expired() call from a store's
    // expire(): a mass expiry is spread over loop iterations (policy p99 stays low).
    static constexpr std::size_t k_expire_slice = 256;

    // Merges `p`: a new network is created; an existing one takes p's user, source and times
    // when p.expires is later (extended); otherwise nothing changes. A stored permit that has
    // already expired is replaced. A new network while size() >= limit is refused (counted).
    // Returns what happened and the stored permit after the merge (for refused: p).
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
    // Removes and returns permits with expires <= now, at most `max` of them (earliest first).
    std::vector<core::Permit> remove_expired(core::Time now, std::size_t max = SIZE_MAX);

    std::vector<core::Permit> live(core::Time now) const;  // sorted by network

    // Start-up loading (a store's open, issue 14: 1M permits in well under a second). Between
    // begin_load(n) and end_load(), load() merges like merge(p, epoch) but takes the names as
    // views (no per-permit allocation) and leaves the expiry heap unordered; end_load() orders
    // it once, in O(n), instead of one sift per permit. `expected` reserves the records and
    // indexes up front. A new network beyond limit() is refused (counted), as by merge().
    // REQUIRES: nothing but load(), find_exact() and remove_exact() between the two calls
    // (a removal keeps the records and the heap positions consistent; end_load() orders all).
    void begin_load(std::size_t expected);
    void load(const core::Cidr& net, std::string_view user, std::string_view source, std::int64_t granted_us,
              std::int64_t expires_us);
    void end_load();

    // A walk over the records (see the file comment). Opaque to callers but for `missed`.
    struct Cursor {
        std::uint32_t pos = 0;                       // next record by position
        std::unordered_set<std::uint32_t> revisit;  // moved behind pos before being visited
        std::uint64_t missed = 0;                    // moved behind pos with revisit full
        bool ended = false;                          // clear() ran
    };
    static constexpr std::size_t k_cursor_revisit_max = 65536;
    // Registers a new cursor; it unregisters itself when the last shared_ptr goes.
    std::shared_ptr<Cursor> open_cursor() const;
    // Calls `visit` for the next live permits of the walk, examining at most `budget` records.
    // Returns false once the walk is complete (every record examined).
    bool scan(Cursor& c, core::Time now, std::size_t budget,
              const std::function<void(const core::Permit&)>& visit) const;
    std::optional<core::Time> next_expiry() const;
    std::size_t size() const { return entries_.size(); }
    std::size_t longest_probe_run() const { return index_.longest_run(); }  // tests
    void clear();
    // Takes `other`'s permits in O(1) (a shared store's snapshot, built off the loop thread);
    // ends open walks like clear(); keeps this table's limit, adds other's refused count.
    void replace_with(PermitTable&& other);

    // max_permits: 0 means no limit. Permits already stored stay; only new networks are refused.
    void set_limit(std::size_t limit) { limit_ = limit; }
    std::size_t limit() const { return limit_; }
    std::uint64_t refused() const { return refused_; }

private:
    struct Key {
        std::array<std::uint8_t, 16> bytes;  // the masked network address, as Address::bytes()
        std::uint8_t prefix;
        std::uint8_t v4;
        bool operator==(const Key&) const = default;
    };
    struct Entry {  // 48 bytes (static_assert in permit_table.cpp)
        Key key;
        std::uint16_t unused = 0;
        std::uint32_t user, source;  // StringPool ids
        std::uint32_t heap_pos;      // where heap_ holds this entry
        std::int64_t granted_us, expires_us;
    };
    static Key key_of(const core::Cidr& net);
    static std::uint64_t hash(const Key& k);
    std::uint32_t locate(const Key& k, std::uint64_t h) const;  // entry number or FlatIndex::npos
    core::Permit permit_at(std::uint32_t i) const;
    // The fields of a permit as stored (names as views): merge() and load() share insert/assign.
    struct Fields {
        std::string_view user, source;
        std::int64_t granted_us, expires_us;
        static Fields of(const core::Permit& p);
    };
    void insert(const Fields& f, const Key& k, std::uint64_t h);
    void assign(std::uint32_t i, const Fields& f);  // new user/source/times, re-sorted unless loading
    void erase_at(std::uint32_t i);
    void cursors_erase(std::uint32_t i, std::uint32_t last);  // keeps open cursors exact
    void erase(const core::Cidr& net);
    std::map<int, std::size_t>& lengths(bool v4) { return v4 ? v4_lengths_ : v6_lengths_; }
    // the expiry heap
    bool earlier(std::uint32_t a, std::uint32_t b) const { return entries_[a].expires_us < entries_[b].expires_us; }
    void heap_set(std::size_t pos, std::uint32_t entry);
    void sift_up(std::size_t pos);
    void sift_down(std::size_t pos);
    void heap_fix(std::size_t pos);
    void heap_remove(std::size_t pos);

    std::vector<Entry> entries_;
    FlatIndex index_;
    std::vector<std::uint32_t> heap_;
    StringPool strings_;
    std::map<int, std::size_t> v4_lengths_, v6_lengths_;  // prefix length -> count, most specific last
    std::size_t limit_ = 0;
    std::uint64_t refused_ = 0;
    bool loading_ = false;  // between begin_load() and end_load(): heap_ not ordered
    mutable std::vector<std::weak_ptr<Cursor>> cursors_;
};

}  // namespace rp::store
