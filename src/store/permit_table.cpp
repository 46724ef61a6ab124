#include "store/permit_table.hpp"

#include <algorithm>
#include <cstring>

namespace rp::store {

// ---- keys and records ----

PermitTable::Key PermitTable::key_of(const core::Cidr& net) {
    return Key{net.network().bytes(), static_cast<std::uint8_t>(net.prefix()),
               static_cast<std::uint8_t>(net.network().is_v4() ? 1 : 0)};
}

std::uint64_t PermitTable::hash(const Key& k) {
    std::uint64_t lo, hi;
    std::memcpy(&lo, k.bytes.data(), 8);
    std::memcpy(&hi, k.bytes.data() + 8, 8);
    static const std::uint64_t seed = hash_seed();
    return mix64(lo ^ seed ^ mix64(hi ^ (std::uint64_t{k.prefix} << 1 | k.v4) ^ (seed >> 7 | seed << 57)));
}

std::uint32_t PermitTable::locate(const Key& k, std::uint64_t h) const {
    return index_.find(h, [&](std::uint32_t i) { return entries_[i].key == k; });
}

core::Permit PermitTable::permit_at(std::uint32_t i) const {
    const Entry& e = entries_[i];
    const core::Address a = e.key.v4 ? core::Address::v4(std::uint32_t{e.key.bytes[0]} << 24 |
                                                          std::uint32_t{e.key.bytes[1]} << 16 |
                                                          std::uint32_t{e.key.bytes[2]} << 8 | e.key.bytes[3])
                                     : core::Address::v6(e.key.bytes);
    return {core::Cidr(a, e.key.prefix), std::string(strings_.get(e.user)), std::string(strings_.get(e.source)),
            core::from_unix_micros(e.granted_us), core::from_unix_micros(e.expires_us)};
}

PermitTable::Fields PermitTable::Fields::of(const core::Permit& p) {
    return {p.user, p.source, core::to_unix_micros(p.granted), core::to_unix_micros(p.expires)};
}

void PermitTable::insert(const Fields& f, const Key& k, std::uint64_t h) {
    static_assert(sizeof(Entry) == 48, "a permit record is 48 bytes");
    const auto i = static_cast<std::uint32_t>(entries_.size());
    Entry e{k, 0, strings_.acquire(f.user), strings_.acquire(f.source), static_cast<std::uint32_t>(heap_.size()),
            f.granted_us, f.expires_us};
    entries_.push_back(e);
    index_.insert(h, i);
    heap_.push_back(i);
    if (!loading_) sift_up(heap_.size() - 1);
    lengths(k.v4)[k.prefix]++;
}

void PermitTable::assign(std::uint32_t i, const Fields& f) {
    Entry& e = entries_[i];
    const auto user = strings_.acquire(f.user), source = strings_.acquire(f.source);
    strings_.release(e.user);
    strings_.release(e.source);
    e.user = user;
    e.source = source;
    e.granted_us = f.granted_us;
    e.expires_us = f.expires_us;
    if (!loading_) heap_fix(e.heap_pos);
}

void PermitTable::erase_at(std::uint32_t i) {
    Entry& e = entries_[i];
    index_.erase(hash(e.key), i);
    heap_remove(e.heap_pos);
    strings_.release(e.user);
    strings_.release(e.source);
    auto& l = lengths(e.key.v4);
    if (--l[e.key.prefix] == 0) l.erase(e.key.prefix);
    const auto last = static_cast<std::uint32_t>(entries_.size() - 1);
    if (!cursors_.empty()) cursors_erase(i, last);
    if (i != last) {  // the last record fills the hole
        entries_[i] = entries_[last];
        index_.renumber(hash(entries_[i].key), last, i);
        heap_[entries_[i].heap_pos] = i;
    }
    entries_.pop_back();
    // After a mass expiry give the memory back; the copy is of the few records left (< 1/8).
    if (entries_.capacity() > 4096 && entries_.size() < entries_.capacity() / 8) {
        entries_.shrink_to_fit();
        heap_.shrink_to_fit();
    }
}

void PermitTable::erase(const core::Cidr& net) {
    const Key k = key_of(net);
    if (const auto i = locate(k, hash(k)); i != FlatIndex::npos) erase_at(i);
}

// Record `i` goes and record `last` moves into its place.
void PermitTable::cursors_erase(std::uint32_t i, std::uint32_t last) {
    std::erase_if(cursors_, [](const auto& w) { return w.expired(); });
    for (const auto& w : cursors_) {
        const auto c = w.lock();
        c->revisit.erase(i);
        if (i == last) continue;
        // Moved forward: `last` was queued (then last < pos, so i < pos too), or not yet
        // visited and now behind the cursor. Either way it must still be visited, at i.
        const bool queued = c->revisit.erase(last) > 0;
        if (queued || (last >= c->pos && i < c->pos)) {
            if (c->revisit.size() < k_cursor_revisit_max) c->revisit.insert(i);
            else ++c->missed;
        }
    }
}

std::shared_ptr<PermitTable::Cursor> PermitTable::open_cursor() const {
    std::erase_if(cursors_, [](const auto& w) { return w.expired(); });
    auto c = std::make_shared<Cursor>();
    cursors_.push_back(c);
    return c;
}

bool PermitTable::scan(Cursor& c, core::Time now, std::size_t budget,
                       const std::function<void(const core::Permit&)>& visit) const {
    const auto now_us = core::to_unix_micros(now);
    if (c.ended) return false;
    for (; budget > 0 && !c.revisit.empty(); --budget) {
        const auto i = *c.revisit.begin();
        c.revisit.erase(c.revisit.begin());
        if (i < entries_.size() && now_us < entries_[i].expires_us) visit(permit_at(i));
    }
    for (; budget > 0 && c.pos < entries_.size(); --budget, ++c.pos)
        if (now_us < entries_[c.pos].expires_us) visit(permit_at(c.pos));
    return c.pos < entries_.size() || !c.revisit.empty();
}

// ---- the expiry heap ----

void PermitTable::heap_set(std::size_t pos, std::uint32_t entry) {
    heap_[pos] = entry;
    entries_[entry].heap_pos = static_cast<std::uint32_t>(pos);
}

void PermitTable::sift_up(std::size_t pos) {
    const auto moving = heap_[pos];
    while (pos > 0) {
        const auto parent = (pos - 1) / 2;
        if (!earlier(moving, heap_[parent])) break;
        heap_set(pos, heap_[parent]);
        pos = parent;
    }
    heap_set(pos, moving);
}

void PermitTable::sift_down(std::size_t pos) {
    const auto moving = heap_[pos];
    const std::size_t n = heap_.size();
    for (;;) {
        std::size_t child = 2 * pos + 1;
        if (child >= n) break;
        if (child + 1 < n && earlier(heap_[child + 1], heap_[child])) ++child;
        if (!earlier(heap_[child], moving)) break;
        heap_set(pos, heap_[child]);
        pos = child;
    }
    heap_set(pos, moving);
}

void PermitTable::heap_fix(std::size_t pos) {
    if (pos > 0 && earlier(heap_[pos], heap_[(pos - 1) / 2])) sift_up(pos);
    else sift_down(pos);
}

void PermitTable::heap_remove(std::size_t pos) {
    const std::size_t last = heap_.size() - 1;
    if (pos != last) {
        heap_set(pos, heap_[last]);
        heap_.pop_back();
        heap_fix(pos);
    } else {
        heap_.pop_back();
    }
}

// ---- the contract ----

std::vector<std::pair<PermitTable::Change, core::Permit>> PermitTable::merge_all(std::span<const core::Permit> permits,
                                                                                core::Time now, Undo& undo) {
    std::vector<std::pair<Change, core::Permit>> out;
    out.reserve(permits.size());
    for (const auto& p : permits) {
        auto before = find_exact(p.network);
        out.push_back(merge(p, now));
        if (out.back().first == Change::created || out.back().first == Change::extended)
            undo.before.emplace_back(p.network, std::move(before));
    }
    return out;
}

void PermitTable::rollback(const Undo& undo) {
    for (auto it = undo.before.rbegin(); it != undo.before.rend(); ++it) {
        erase(it->first);
        if (it->second) merge(*it->second, core::Time::min());
    }
}

std::pair<PermitTable::Change, core::Permit> PermitTable::merge(const core::Permit& p, core::Time now) {
    const Key k = key_of(p.network);
    const auto h = hash(k);
    if (const auto i = locate(k, h); i != FlatIndex::npos) {
        const auto stored_expires = core::from_unix_micros(entries_[i].expires_us);
        const bool stale = stored_expires <= now;
        if (!stale && p.expires <= stored_expires) return {Change::unchanged, permit_at(i)};
        assign(i, Fields::of(p));
        return {stale ? Change::created : Change::extended, p};
    }
    if (limit_ != 0 && entries_.size() >= limit_) {
        ++refused_;
        return {Change::refused, p};
    }
    insert(Fields::of(p), k, h);
    return {Change::created, p};
}

// ---- start-up loading ----

void PermitTable::begin_load(std::size_t expected) {
    loading_ = true;
    const std::size_t n = entries_.size() + expected;
    entries_.reserve(n);
    heap_.reserve(n);
    index_.reserve(n);
    strings_.reserve(n);  // at most one user name per permit; sources are few
}

void PermitTable::load(const core::Cidr& net, std::string_view user, std::string_view source,
                       std::int64_t granted_us, std::int64_t expires_us) {
    const Key k = key_of(net);
    const auto h = hash(k);
    const Fields f{user, source, granted_us, expires_us};
    if (const auto i = locate(k, h); i == FlatIndex::npos) {
        if (limit_ != 0 && entries_.size() >= limit_) ++refused_;
        else insert(f, k, h);
    } else if (expires_us > entries_[i].expires_us) assign(i, f);  // two rows, one network: the later
}

void PermitTable::end_load() {
    loading_ = false;
    // Floyd's heap construction: sift down every inner node, last first (O(n) in all).
    for (std::size_t pos = heap_.size() / 2; pos-- > 0;) sift_down(pos);
}

std::optional<core::Permit> PermitTable::find(const core::Address& a, core::Time now) const {
    const auto& ls = a.is_v4() ? v4_lengths_ : v6_lengths_;
    const auto now_us = core::to_unix_micros(now);
    for (auto l = ls.rbegin(); l != ls.rend(); ++l) {
        const Key k = key_of(core::Cidr(a, l->first));
        const auto i = locate(k, hash(k));
        if (i != FlatIndex::npos && now_us < entries_[i].expires_us) return permit_at(i);
    }
    return std::nullopt;
}

std::optional<core::Permit> PermitTable::find_exact(const core::Cidr& net) const {
    const Key k = key_of(net);
    const auto i = locate(k, hash(k));
    if (i == FlatIndex::npos) return std::nullopt;
    return permit_at(i);
}

std::vector<core::Permit> PermitTable::remove_covering(const core::Address& a) {
    std::vector<core::Permit> out;
    const auto ls = a.is_v4() ? v4_lengths_ : v6_lengths_;  // copy: erase_at() edits it
    for (const auto& [len, count] : ls) {
        const Key k = key_of(core::Cidr(a, len));
        const auto i = locate(k, hash(k));
        if (i == FlatIndex::npos) continue;
        out.push_back(permit_at(i));
        erase_at(i);
    }
    return out;
}

std::vector<core::Permit> PermitTable::remove_within(const core::Cidr& net) {
    std::vector<core::Permit> out;
    for (std::uint32_t i = 0; i < entries_.size(); ++i) {
        auto p = permit_at(i);
        if (p.network.prefix() >= net.prefix() && net.contains(p.network.network())) out.push_back(std::move(p));
    }
    for (const auto& p : out) erase(p.network);
    return out;
}

std::vector<core::Permit> PermitTable::remove_user(std::string_view user) {
    std::vector<core::Permit> out;
    for (std::uint32_t i = 0; i < entries_.size(); ++i)
        if (strings_.get(entries_[i].user) == user) out.push_back(permit_at(i));
    for (const auto& p : out) erase(p.network);
    return out;
}

std::vector<core::Permit> PermitTable::remove_expired(core::Time now, std::size_t max) {
    std::vector<core::Permit> out;
    const auto now_us = core::to_unix_micros(now);
    while (out.size() < max && !heap_.empty() && entries_[heap_.front()].expires_us <= now_us) {
        out.push_back(permit_at(heap_.front()));
        erase_at(heap_.front());
    }
    return out;
}

std::vector<core::Permit> PermitTable::live(core::Time now) const {
    std::vector<core::Permit> out;
    const auto now_us = core::to_unix_micros(now);
    for (std::uint32_t i = 0; i < entries_.size(); ++i)
        if (now_us < entries_[i].expires_us) out.push_back(permit_at(i));
    std::sort(out.begin(), out.end(), [](const auto& x, const auto& y) { return x.network < y.network; });
    return out;
}

std::optional<core::Time> PermitTable::next_expiry() const {
    if (heap_.empty()) return std::nullopt;
    return core::from_unix_micros(entries_[heap_.front()].expires_us);
}

void PermitTable::replace_with(PermitTable&& other) {
    clear();  // ends open walks
    entries_ = std::move(other.entries_);
    index_ = std::move(other.index_);
    heap_ = std::move(other.heap_);
    strings_ = std::move(other.strings_);
    v4_lengths_ = std::move(other.v4_lengths_);
    v6_lengths_ = std::move(other.v6_lengths_);
    refused_ += other.refused_;
    other.clear();
}

void PermitTable::clear() {
    for (const auto& w : cursors_)
        if (const auto c = w.lock()) {
            c->revisit.clear();
            c->ended = true;
        }
    entries_ = {};
    index_.clear();
    heap_ = {};
    strings_.clear();
    v4_lengths_.clear();
    v6_lengths_.clear();
}

}  // namespace rp::store
