// Exporter: writes the live permits into a map file for MTAs that can only read files
// ([[export]] tables: postfix-cdb, postfix-lmdb and postfix-hash (db_maps.hpp), sendmail-access,
// tcprules-cdb, relay-ctrl-dir, opensmtpd-table).
//
// ExportScheduler (export_scheduler.hpp) calls write_map() with every live permit after a change
// and at each expiry, on its worker thread, then map_written() on the loop's thread; write() is
// both in one call. write_map() replaces the file atomically (temporary file in the same directory, fsync, rename, fsync of the
// directory), so a reader sees the old or the new map, never a partial one, and it does nothing
// when the content would be identical. On error the previous file stays as it was.
// relay-ctrl-dir keeps one file per permit instead (each replaced atomically) and removes only
// the files whose names parse as addresses.
// opensmtpd-table is a text file, one address or network per line (an OpenSMTPD file table).
// An export with `after_write` runs that command (AfterWriteCommand, on the daemon's loop) from
// map_written(): after every write that replaced the map, and after the exporter's first write.
// Security: permit data (user names) is untrusted log text; only relay-ctrl-dir writes it, and
// only when it is printable ASCII. Static files are trusted admin input, parsed strictly.
// Thread-safety: write_map() touches files only (no event loop): any one thread at a time may call
// it. map_written(), busy() and destruction belong to the loop's thread. replacements() is read
// by whoever called write_map() last, or after a hand-over that orders the two (a mutex).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "config/config.hpp"
#include "core/login_event.hpp"
#include "core/result.hpp"
#include "core/time.hpp"

namespace rp::util {
class EventLoop;
}

namespace rp::exports {

class Exporter {
public:
    virtual ~Exporter();
    // "TYPE:PATH", for log lines.
    virtual const std::string& describe() const = 0;
    // Replaces the map with `live` (permits expiring at or before `now` are left out): the file
    // work alone; an empty `live` leaves the static part only. On error the previous file stays.
    virtual core::Status write_map(std::span<const core::Permit> live, core::Time now) = 0;
    // After a successful write_map(), on the loop's thread; `replaced`: the map changed. Starts
    // the after_write command when there is one (after a replacing or the first write).
    virtual void map_written(bool replaced) { (void)replaced; }
    // True while what map_written() started still runs (an after_write command).
    virtual bool busy() const { return false; }
    // write_map(), then map_written() on success, on the caller's thread (the loop's thread when
    // there is an after_write command).
    core::Status write(std::span<const core::Permit> live, core::Time now);
    // How many times write() has replaced the map (or changed a relay-ctrl file) so far.
    std::uint64_t replacements() const { return replacements_; }

protected:
    std::uint64_t replacements_ = 0;
};

// When a missing or unreadable `static` file is an error: at open (open_exporter fails), or only
// at each write (the daemon: a static file that appears later is picked up by the retries).
enum class StaticCheck { at_open, at_write };

// Creates the exporter for `cfg` and the directory of `path` (relay-ctrl-dir: `path` itself) if
// missing. `relayclient` is the RELAYCLIENT value tcprules-cdb gives (Config::relayclient).
// `loop` runs the `after_write` command; an export with after_write and no loop is an error.
core::Result<std::unique_ptr<Exporter>> open_exporter(const config::ExportConfig& cfg,
                                                      const std::string& relayclient = "",
                                                      util::EventLoop* loop = nullptr,
                                                      StaticCheck check = StaticCheck::at_open);

}  // namespace rp::exports
