// Exporter: writes the live permits into a map file for MTAs that can only read files
// ([[export]] tables: postfix-cdb, sendmail-access, tcprules-cdb, relay-ctrl-dir,
// opensmtpd-table).
//
// The daemon calls write() with every live permit after a change and at each expiry. write()
// replaces the file atomically (temporary file in the same directory, fsync, rename, fsync of the
// directory), so a reader sees the old or the new map, never a partial one, and it does nothing
// when the content would be identical. On error the previous file stays as it was.
// relay-ctrl-dir keeps one file per permit instead (each replaced atomically) and removes only
// the files whose names parse as addresses.
// opensmtpd-table is a text file, one address or network per line (an OpenSMTPD file table).
// An export with `after_write` runs that command (AfterWriteCommand, on the daemon's loop) after
// every write() that replaced the map, and after the first write() of the exporter.
// Security: permit data (user names) is untrusted log text; only relay-ctrl-dir writes it, and
// only when it is printable ASCII. Static files are trusted admin input, parsed strictly.
// Thread-safety: one Exporter is used from one thread.
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
    // Replaces the map with `live` (permits expiring at or before `now` are left out).
    virtual core::Status write(std::span<const core::Permit> live, core::Time now) = 0;
    // How many times write() has replaced the map (or changed a relay-ctrl file) so far.
    std::uint64_t replacements() const { return replacements_; }

protected:
    std::uint64_t replacements_ = 0;
};

// Creates the exporter for `cfg` and the directory of `path` (relay-ctrl-dir: `path` itself) if
// missing. `relayclient` is the RELAYCLIENT value tcprules-cdb gives (Config::relayclient).
// `loop` runs the `after_write` command; an export with after_write and no loop is an error.
core::Result<std::unique_ptr<Exporter>> open_exporter(const config::ExportConfig& cfg,
                                                      const std::string& relayclient = "",
                                                      util::EventLoop* loop = nullptr);

}  // namespace rp::exports
