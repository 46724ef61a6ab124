#include "cli/cmd_scan.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <thread>

#include "config/config.hpp"
#include "daemon/daemon.hpp"
#include "matching/matcher.hpp"
#include "util/file_reader.hpp"
#include "util/log.hpp"
#include "util/parallel_map.hpp"

namespace rp::cli {
namespace {

constexpr int k_ok = 0, k_error = 2;
// A thread's work unit, and its read() buffer: small enough that the bytes just read are still
// in the core's cache when the prefilter runs over them (docs/benchmarks.md).
constexpr std::size_t k_chunk_bytes = std::size_t{8} << 20;
constexpr std::size_t k_read_block = std::size_t{256} << 10;
// With --read-path auto, the calibration chunks (ReadPathChooser: at most 2 * k_samples) are
// this long: a sample of the dearer path costs a quarter of a full chunk's (mmap was 2.7x read
// on the second host of docs/benchmarks.md).
constexpr std::size_t k_calibration_chunk_bytes = std::size_t{2} << 20;

void err(const std::string& msg) { std::fprintf(stderr, "relaypermit: %s\n", util::escape_text(msg).c_str()); }

// What one scan needs: the matcher, the caller's state, the output.
struct Scan {
    const matching::Matcher& matcher;
    matching::MatchState state;
    core::Time now;
    std::function<void(const matching::LoginMatch&)> on_match;
    unsigned threads;
    util::ReadPath read_path;
    bool stats;
};

// A thread's scratch: the matcher's and the read buffer.
struct Worker {
    matching::ScanScratch scratch;
    util::ChunkBuffer buf{k_read_block};
    explicit Worker(const matching::Matcher& m) : scratch(m) {}
};

struct ChunkResult {
    matching::ChunkMatches matches;
    std::string error;  // the read failed
};

// A regular file, in chunks on several threads. False when `fd` is no regular file.
bool scan_chunked(Scan& s, int fd, const std::string& name, int& status) {
    const util::ChunkedFile::Lead lead{
        s.read_path == util::ReadPath::automatic ? 2 * util::ReadPathChooser::k_samples : 0, k_calibration_chunk_bytes};
    auto file = util::ChunkedFile::open(fd, k_chunk_bytes, s.read_path, lead);
    if (!file) return false;
    util::ReadPathChooser chooser(s.read_path, s.read_path == util::ReadPath::read || file->mapped());
    Worker caller(s.matcher);
    std::string error;
    util::SparePool<matching::ChunkMatches> spare;  // emptied results, reused
    util::ordered_parallel_map<ChunkResult>(
        file->chunks(), util::ParallelOptions{s.threads}, caller,
        [&] { return std::make_unique<Worker>(s.matcher); },
        [&](std::size_t i, Worker& w) {
            ChunkResult r{spare.take(), {}};
            const auto path = chooser.path_for(i);
            const auto t0 = util::thread_cpu_time();
            std::size_t bytes = 0;
            // One thread works and emits each chunk in turn (ordered_parallel_map), so it matches
            // with the caller's state directly: no copy of the lines kept for emit_chunk. (The CPU
            // time sampled for the read path then includes writing the output, on either path.)
            auto st = file->read_chunk(i, path, w.buf, [&](std::string_view lines) {
                bytes += lines.size();
                if (s.threads == 1)
                    s.matcher.scan(lines, s.now, s.state, s.on_match);
                else
                    s.matcher.scan_chunk(lines, s.now, w.scratch, r.matches);
            });
            chooser.report(path, bytes, util::thread_cpu_time() - t0);
            if (!st) r.error = st.error().message;
            return r;
        },
        [&](std::size_t, ChunkResult&& r) {
            if (!r.error.empty() && error.empty()) error = r.error;
            s.matcher.emit_chunk(r.matches, s.now, s.state, s.on_match);
            spare.give(std::move(r.matches));
        });
    if (!error.empty()) {
        err(name + ": " + error);
        status = k_error;
    }
    if (s.stats)
        std::fprintf(stderr, "relaypermit: scan %s: %zu bytes, %u threads, prefilter %s, read path %s\n",
                     util::escape_text(name).c_str(), file->size(), s.threads,
                     s.matcher.prefilter_description().c_str(), chooser.describe().c_str());
    return true;
}

// A stream (standard input, a pipe): read into one buffer, scanned on this thread.
void scan_stream(Scan& s, int fd, const std::string& name, int& status) {
    util::ChunkBuffer buf(k_read_block);
    auto st = util::read_lines(fd, buf, [&](std::string_view lines) {
        s.matcher.scan(lines, core::SystemClock().now(), s.state, s.on_match);
    });
    if (!st) {
        err(name + ": " + st.error().message);
        status = k_error;
    }
    if (s.stats)
        std::fprintf(stderr, "relaypermit: scan %s: stream, prefilter %s, read path read\n",
                     util::escape_text(name).c_str(), s.matcher.prefilter_description().c_str());
}

// --threads (default: CPUs, at most 4) and --read-path; nullopt after a message.
std::optional<std::pair<unsigned, util::ReadPath>> scan_options(const ParsedArgs& a) {
    unsigned threads = std::clamp(std::thread::hardware_concurrency(), 1u, 4u);
    if (a.has("--threads")) {
        const auto v = a.get("--threads", "");
        char* end = nullptr;
        const unsigned long t = std::strtoul(v.c_str(), &end, 10);
        if (v.empty() || *end != '\0' || t < 1 || t > 64) {
            err("--threads: expected a number from 1 to 64, got '" + v + "'");
            return std::nullopt;
        }
        threads = static_cast<unsigned>(t);
    }
    const auto name = a.get("--read-path", "auto");
    const auto path = util::parse_read_path(name);
    if (!path) {
        err("--read-path: expected auto, read or mmap, got '" + name + "'");
        return std::nullopt;
    }
    return std::pair{threads, *path};
}

void append_match(std::string& out, const matching::LoginMatch& m, bool explain) {
    m.ip.append_to(out);
    out += '\t';
    // The user name is the log line's text, which a client chose: a tab in it would shift the
    // columns, an escape sequence would reach the admin's terminal (cmd_scan.hpp, "Security").
    util::append_column(out, m.user);
    out += '\t';
    out += m.server;
    if (explain) {
        out += '\t';
        out += m.server;
        out += '/';
        out += m.pattern;
        out += '\t';
        out += core::format_time(m.time);
        out += '\t';
        out += matching::describe(m.time_detail);  // where the time came from
    }
    out += '\n';
}

}  // namespace

int cmd_scan(const ParsedArgs& a) {
    auto cfg = config::load_config(a.get("--config", config::k_default_path), a.has("--config"));
    if (!cfg) {
        err(cfg.error().message);
        return k_error;
    }
    const auto user = daemon::user_pattern_specs(*cfg);
    std::vector<std::string> select = a.options.count("--pattern") ? a.options.at("--pattern") : daemon::enabled_pattern_sets(*cfg);
    auto matcher = matching::Matcher::build(select, user);
    if (!matcher) {
        err(matcher.error().message);
        return k_error;
    }
    const auto opts = scan_options(a);
    if (!opts) return k_error;
    const bool explain = a.has("--explain");
    std::string out;
    auto flush = [&] {
        if (!out.empty()) std::fwrite(out.data(), 1, out.size(), stdout);
        out.clear();
    };
    Scan s{**matcher, matching::MatchState(**matcher), core::SystemClock().now(),
           [&](const matching::LoginMatch& m) {
               append_match(out, m, explain);
               if (out.size() > 1 << 16) flush();
           },
           opts->first, opts->second, a.has("--stats")};
    int status = k_ok;
    if (a.positionals.empty()) scan_stream(s, STDIN_FILENO, "stdin", status);
    for (const auto& f : a.positionals) {
        const int fd = ::open(f.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            err(f + ": " + std::strerror(errno));
            status = k_error;
            continue;
        }
        ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
        s.now = core::SystemClock().now();
        if (!scan_chunked(s, fd, f, status)) scan_stream(s, fd, f, status);
        ::close(fd);
    }
    flush();
    return status;
}

}  // namespace rp::cli
