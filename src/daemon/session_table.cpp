#include "daemon/session_table.hpp"

#include <algorithm>

namespace rp::daemon {

std::string_view session_state_name(SessionState s) {
    switch (s) {
        case SessionState::open: return "open";
        case SessionState::closed: return "closed";
        case SessionState::none: break;
    }
    return "none";
}

std::string SessionTable::key_of(std::string_view server, std::string_view id) {
    std::string k(server);
    k += '\0';  // neither a pattern set name nor a session id holds NUL: the key is unambiguous
    k += id;
    return k;
}

void SessionTable::unschedule(const core::Cidr& net, Net& n) {
    if (n.scheduled) due_.erase({n.due, net});
    n.scheduled = false;
}

void SessionTable::set_due(const core::Cidr& net, core::Time due) {
    auto it = nets_.find(net);
    if (it == nets_.end()) return;
    unschedule(net, it->second);
    it->second.due = due;
    it->second.scheduled = true;
    due_.insert({due, net});
}

void SessionTable::open(Session s, core::Time due) {
    auto key = key_of(s.server, s.id);
    if (sessions_.count(key)) remove(key);
    while (sessions_.size() >= limit_) {  // the oldest first
        remove(by_age_.begin()->second);
        ++dropped_;
    }
    const auto net = s.network;
    const auto seq = next_seq_++;
    by_age_.emplace(seq, key);
    auto& n = nets_[net];
    n.keys.insert(key);
    sessions_.emplace(std::move(key), Entry{std::move(s), seq});
    closed_.erase(net);
    if (!n.scheduled || due < n.due) set_due(net, due);
}

Session SessionTable::remove(std::string key) {
    auto it = sessions_.find(key);
    Session s = std::move(it->second.s);
    by_age_.erase(it->second.seq);
    sessions_.erase(it);
    auto n = nets_.find(s.network);
    n->second.keys.erase(key);
    if (n->second.keys.empty()) {
        unschedule(s.network, n->second);
        nets_.erase(n);
    }
    return s;
}

std::optional<Session> SessionTable::end(std::string_view server, std::string_view id, std::string_view source) {
    const auto key = key_of(server, id);
    auto it = sessions_.find(key);
    if (it == sessions_.end() || it->second.s.source != source) return std::nullopt;
    return remove(key);
}

std::vector<Session> SessionTable::end_user(std::string_view user) {
    std::vector<std::string> keys;
    for (const auto& [k, e] : sessions_)
        if (e.s.user == user) keys.push_back(k);
    std::vector<Session> out;
    for (const auto& k : keys) out.push_back(remove(k));
    return out;
}

std::vector<Session> SessionTable::end_network(const core::Cidr& net, std::optional<std::string_view> source) {
    std::vector<Session> out;
    auto it = nets_.find(net);
    if (it == nets_.end()) return out;
    const auto keys = it->second.keys;  // remove() erases the entry with its last key
    for (const auto& k : keys)
        if (!source || sessions_.at(k).s.source == *source) out.push_back(remove(k));
    return out;
}

std::vector<Session> SessionTable::end_logged_in_before(const core::Cidr& net, core::Time t) {
    std::vector<Session> out;
    for (const auto* s : on_network(net))
        if (s->login < t) out.push_back(*s);
    for (const auto& s : out) remove(key_of(s.server, s.id));
    return out;
}

void SessionTable::tighten_caps(core::Duration max_lifetime) {
    for (auto& [key, e] : sessions_) {
        e.s.cap = std::min(e.s.cap, e.s.login + max_lifetime);
        auto& n = nets_.at(e.s.network);
        if (!n.scheduled || e.s.cap < n.due) set_due(e.s.network, e.s.cap);
    }
}

std::vector<Session> SessionTable::end_capped(const core::Cidr& net, core::Time now) {
    std::vector<Session> out;
    for (const auto* s : on_network(net))
        if (s->cap <= now) out.push_back(*s);
    for (const auto& s : out) remove(key_of(s.server, s.id));
    return out;
}

std::vector<core::Cidr> SessionTable::take_due(core::Time now, std::size_t max) {
    std::vector<core::Cidr> out;
    while (!due_.empty() && out.size() < max && due_.begin()->first <= now) {
        const auto net = due_.begin()->second;
        nets_[net].scheduled = false;
        due_.erase(due_.begin());
        out.push_back(net);
    }
    return out;
}

std::optional<core::Time> SessionTable::next_due() const {
    if (due_.empty()) return std::nullopt;
    return due_.begin()->first;
}

std::vector<const Session*> SessionTable::on_network(const core::Cidr& net) const {
    std::vector<const Session*> out;
    auto it = nets_.find(net);
    if (it == nets_.end()) return out;
    for (const auto& k : it->second.keys) out.push_back(&sessions_.at(k).s);
    return out;
}

void SessionTable::mark_closed(const core::Cidr& net, core::Time until) {
    if (closed_.size() >= limit_ && !closed_.count(net)) closed_.erase(closed_.begin());
    closed_[net] = until;
}

SessionState SessionTable::state(const core::Cidr& net, core::Time now) const {
    if (has_open(net)) return SessionState::open;
    auto it = closed_.find(net);
    if (it != closed_.end() && now < it->second) return SessionState::closed;
    return SessionState::none;
}

std::vector<Session> SessionTable::all() const {
    std::vector<Session> out;
    out.reserve(sessions_.size());
    for (const auto& [seq, key] : by_age_) out.push_back(sessions_.at(key).s);
    return out;
}

void open_session(SessionTable& t, const PermitPolicy& policy, const core::LoginEvent& login,
                  const core::Permit& granted) {
    Session s{login.server, login.session, granted.network, login.user, login.source, granted.granted,
              policy.session_cap(granted.granted, granted.granted)};
    const auto due = policy.session_due(granted.expires, s.cap);
    t.open(std::move(s), due);
}

std::size_t open_granted_sessions(SessionTable& t, const PermitPolicy& policy,
                                  std::span<const std::pair<core::LoginEvent, core::Permit>> logins,
                                  std::span<const store::GrantOutcome> outcomes) {
    std::size_t n = 0;
    for (std::size_t i = 0; i < logins.size() && i < outcomes.size(); ++i) {
        if (outcomes[i].change == store::GrantOutcome::Change::refused) continue;  // caps, max_permits
        open_session(t, policy, logins[i].first, logins[i].second);
        ++n;
    }
    return n;
}

std::optional<core::Permit> refresh_network(SessionTable& t, const PermitPolicy& policy, const core::Cidr& net,
                                            bool permit_live, core::Time now, std::vector<Session>& capped,
                                            std::vector<Session>& ended) {
    for (auto& s : t.end_capped(net, now)) capped.push_back(std::move(s));
    const auto open = t.on_network(net);
    if (open.empty()) return std::nullopt;
    // The session with the latest cap keeps the permit longest.
    const Session& best =
        **std::max_element(open.begin(), open.end(), [](const Session* a, const Session* b) { return a->cap < b->cap; });
    auto p = permit_live ? policy.session_permit(net, best.user, best.source, now, best.cap, now) : std::nullopt;
    if (!p) {  // the permit is gone (revoked; expired while the loop stalled): so are its sessions
        for (auto& s : t.end_network(net)) ended.push_back(std::move(s));
        return std::nullopt;
    }
    t.set_due(net, policy.session_due(p->expires, best.cap));
    return p;
}

std::optional<core::Permit> close_session(SessionTable& t, const PermitPolicy& policy, const Session& s,
                                          bool permit_live, core::Time end, core::Time now) {
    if (t.has_open(s.network)) return std::nullopt;  // another open session keeps the permit
    auto p = permit_live ? policy.session_permit(s.network, s.user, s.source, end, s.cap, now) : std::nullopt;
    t.mark_closed(s.network, p ? p->expires : now);
    return p;
}

}  // namespace rp::daemon
