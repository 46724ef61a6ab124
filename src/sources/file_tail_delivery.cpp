// FileTailSource: the checkpoint and deliver(): a batch's events go to the sink together with the
// position after it; a failure goes back to the last committed position and retries.
#include <algorithm>

#include "sources/file_tail_internal.hpp"

namespace rp::sources {
namespace {

using util::Level;

}  // namespace

bool FileTailSource::dirty() const {
    if (structure_changed_) return true;
    auto moved = [](const Tail& t) { return t.consumed() != t.committed_offset || t.skipping != t.committed_skip; };
    if (current_ && moved(*current_)) return true;
    return std::any_of(draining_.begin(), draining_.end(), [&](const auto& t) { return moved(*t); });
}

std::string FileTailSource::make_checkpoint() const {
    auto position = [&](const Tail& t) {
        const std::uint64_t off = t.consumed();
        const auto fp_len = std::min(t.head.size(), file_tail::head_bytes(opts_.fingerprint_bytes, off));
        return TailPosition{t.dev, t.ino, off, t.skipping, fingerprint(std::string_view(t.head).substr(0, fp_len)), fp_len};
    };
    TailCheckpoint cp;
    if (current_) cp.current = position(*current_);
    for (const auto& t : draining_)
        if (!t->closing) cp.draining.push_back(position(*t));
    return format_tail_checkpoint(cp);
}

void FileTailSource::commit_all() {
    auto commit = [&](Tail& t) {
        t.committed_offset = t.consumed();
        t.committed_skip = t.skipping;
        t.committed_head = t.head.substr(0, file_tail::head_bytes(opts_.fingerprint_bytes, t.committed_offset));
    };
    if (current_) commit(*current_);
    for (auto& t : draining_) commit(*t);
}

void FileTailSource::revert_all() {
    auto revert = [](Tail& t) {
        t.read_pos = t.committed_offset;
        t.pending.clear();
        t.skipping = t.committed_skip;
        t.head = t.committed_head;
        t.closing = false;
    };
    if (current_) revert(*current_);
    for (auto& t : draining_) revert(*t);
}

void FileTailSource::finish_pass(bool more) {
    const auto now = env_.now();
    const bool need = !events_.empty() || structure_changed_ ||
                      (dirty() && now - last_delivery_ >= opts_.checkpoint_interval);
    if (need) {
        const auto st = sink_.deliver(events_, core::Checkpoint{name_, make_checkpoint()});
        events_.clear();
        if (!st) {
            deliver_failed(st.error());
            return;
        }
        delivered(now);
    } else if (dirty() && flush_timer_ == 0) {
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(opts_.checkpoint_interval - (now - last_delivery_));
        arm(flush_timer_, std::max(left, std::chrono::milliseconds(0)), &FileTailSource::on_flush);
    }
    if (more) arm(continue_timer_, std::chrono::milliseconds(0), &FileTailSource::on_continue);
    arm_grace_timer(now);
}

// Back to the committed positions; the same batch is read and offered again after retry_delay.
void FileTailSource::deliver_failed(const core::Error& error) {
    warn_.log(Level::warning, "file source {}: could not store {} events and the position: {}; retrying in {} ms",
              name_, pending_counters_.matches, error.message, opts_.retry_delay.count());
    revert_all();
    pending_counters_ = {};
    failing_ = true;
    if (continue_timer_ != 0) {
        loop_->cancel(continue_timer_);
        continue_timer_ = 0;
    }
    arm(retry_timer_, opts_.retry_delay, &FileTailSource::on_retry);
}

// The batch and its position are stored: commit, count, and close the drained files it no
// longer names.
void FileTailSource::delivered(util::EventLoop::Steady::time_point now) {
    commit_all();
    committed_counters_.lines += pending_counters_.lines;
    committed_counters_.matches += pending_counters_.matches;
    committed_counters_.malformed += pending_counters_.malformed;
    committed_counters_.dropped += pending_counters_.dropped;
    pending_counters_ = {};
    structure_changed_ = false;
    last_delivery_ = now;
    for (auto it = draining_.begin(); it != draining_.end();) {
        if ((*it)->closing) {
            util::log(Level::info, "file source {}: finished rotated {} (inode {}) at offset {}", name_, (*it)->label,
                      (*it)->ino, (*it)->read_pos);
            unwatch_tail(**it);
            it = draining_.erase(it);
        } else {
            ++it;
        }
    }
}

void FileTailSource::arm_grace_timer(util::EventLoop::Steady::time_point now) {
    if (!draining_.empty()) {
        auto earliest = draining_.front()->last_data;
        for (const auto& t : draining_) earliest = std::min(earliest, t->last_data);
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(earliest + opts_.drain_grace - now);
        arm(grace_timer_, std::max(left, std::chrono::milliseconds(0)) + std::chrono::milliseconds(1),
            &FileTailSource::on_grace);
    } else if (grace_timer_ != 0) {
        loop_->cancel(grace_timer_);
        grace_timer_ = 0;
    }
}

}  // namespace rp::sources
