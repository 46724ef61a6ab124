// export_bench: how fresh [[export]] files stay and how long the loop is held, at 1k..1M permits.
//
// For each size N and export type, in one process: a PermitTable with N live permits (half IPv4,
// half IPv6 hosts, as at an ISP), an ExportScheduler on a util::EventLoop whose snapshot is the
// table's live() (what the daemon's store list() does), and a 1 ms timer on the same loop that
// records how late it fires: a policy request arriving meanwhile waits that long. After the first
// (initial) write, it grants one more permit, calls changed() and measures until the write is
// done: "fresh" is that time (what an MTA waits to see the permit in the file), "loop held" the
// largest timer lateness during it, "snapshot" the copy on the loop alone (the daemon's: a table
// cursor, 2048 records per loop turn, summed over the turns; `--whole` copies with live() in one
// go, sorted, as the daemon did before; `--glibc-fastbins` leaves glibc's fast bins on, as before
// util::tune_allocator_for_latency). Files go to a
// temporary directory on the file system of $TMPDIR (fsync included: that is what a rewrite costs).
// Prints a Markdown table. Figures, not assertions.
//
// Usage: export_bench [--sizes 1000,10000,100000] [--types postfix-cdb,opensmtpd-table,...]
//                     [--rounds 3] [--whole] [--glibc-fastbins]
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "config/kinds.hpp"
#include "exports/export_scheduler.hpp"
#include "store/permit_table.hpp"
#include "util/allocator.hpp"
#include "util/event_loop.hpp"

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

std::vector<std::string> split(const std::string& s) {
    std::vector<std::string> out;
    std::stringstream ss(s);
    for (std::string item; std::getline(ss, item, ',');)
        if (!item.empty()) out.push_back(item);
    return out;
}

rp::core::Permit permit_for(std::size_t i, rp::core::Time now) {
    char text[64];
    if (i % 2 == 0)
        std::snprintf(text, sizeof text, "10.%zu.%zu.%zu", (i >> 16) & 255, (i >> 8) & 255, i & 255);
    else
        std::snprintf(text, sizeof text, "2001:db8:%zx:%zx::1", (i >> 16) & 0xffff, i & 0xffff);
    rp::core::Permit p;
    p.network = rp::core::Cidr::host(*rp::core::Address::parse(text));
    p.user = "user" + std::to_string(i);
    p.source = "file:/var/log/mail.log";
    p.granted = now;
    p.expires = now + std::chrono::minutes(30);
    return p;
}

double ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

bool g_whole = false;

struct Figures {
    double snapshot_ms = 0, fresh_ms = 0, held_ms = 0;
};

// One change at `n` permits, measured `rounds` times; the medians.
Figures measure(const std::string& type, std::size_t n, int rounds) {
    rp::core::SystemClock clock;
    const auto now = clock.now();
    rp::store::PermitTable table;
    for (std::size_t i = 0; i < n; ++i) table.merge(permit_for(i, now), now);

    const fs::path dir = fs::temp_directory_path() / ("rp-export-bench-" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    rp::config::ExportConfig cfg;
    cfg.type = *rp::config::from_string<rp::config::ExportType>(type);
    cfg.path = (dir / (type == "postfix-cdb" ? "map.cdb" : type == "sendmail-access" ? "access.db" : "map")).string();
    if (type == "tcprules-cdb" || type == "sendmail-access") {
        cfg.static_path = (dir / "static").string();
        std::FILE* f = std::fopen(cfg.static_path.c_str(), "w");
        std::fputs(type == "tcprules-cdb" ? "127.:allow\n" : "Connect:localhost RELAY\n", f);
        std::fclose(f);
    }

    rp::util::EventLoop loop;
    double snapshot_ms = 0;
    auto whole = [&](rp::core::Time t) {
        const auto start = Clock::now();
        auto live = table.live(t);
        snapshot_ms = ms(Clock::now() - start);
        return live;
    };
    auto pieces = [&](rp::core::Time t) -> rp::exports::ExportScheduler::PieceCopy {
        snapshot_ms = 0;
        return [&table, &snapshot_ms, t, cursor = table.open_cursor()](std::vector<rp::core::Permit>& out) {
            const auto start = Clock::now();
            if (out.empty()) out.reserve(table.size());
            const bool more = table.scan(*cursor, t, 2048, [&](const rp::core::Permit& p) { out.push_back(p); });
            snapshot_ms += ms(Clock::now() - start);
            return more;
        };
    };
    auto owned = g_whole ? std::make_unique<rp::exports::ExportScheduler>(loop, clock, whole)
                         : std::make_unique<rp::exports::ExportScheduler>(loop, clock, pieces);
    auto& sched = *owned;
    std::vector<std::unique_ptr<rp::exports::Exporter>> v;
    auto exporter = rp::exports::open_exporter(cfg, "", &loop);
    if (!exporter) {
        std::fprintf(stderr, "%s\n", exporter.error().message.c_str());
        std::exit(2);
    }
    v.push_back(std::move(*exporter));
    sched.set_exporters(std::move(v));
    sched.write_now();

    // The probe: a 1 ms timer that notes how late it runs.
    double held = 0;
    auto due = Clock::now() + 1ms;
    std::function<void()> tick = [&] {
        held = std::max(held, ms(Clock::now() - due));
        due = Clock::now() + 1ms;
        loop.call_after(1ms, tick);
    };
    loop.call_after(1ms, tick);

    std::vector<Figures> runs;
    for (int r = 0; r < rounds; ++r) {
        const auto before = sched.status().at(0).writes;
        const auto t = clock.now();
        table.merge(permit_for(n + static_cast<std::size_t>(r), t), t);
        held = 0;
        const auto start = Clock::now();
        sched.changed();
        while (sched.status().at(0).writes == before) loop.run_once(1ms);
        runs.push_back({snapshot_ms, ms(Clock::now() - start), held});
        if (sched.status().at(0).failing) std::fprintf(stderr, "%s: %s\n", type.c_str(), sched.status()[0].last_error.c_str());
    }
    sched.stop();
    fs::remove_all(dir);
    auto median = [&](auto field) {
        std::vector<double> xs;
        for (const auto& f : runs) xs.push_back(f.*field);
        std::sort(xs.begin(), xs.end());
        return xs[xs.size() / 2];
    };
    return {median(&Figures::snapshot_ms), median(&Figures::fresh_ms), median(&Figures::held_ms)};
}

}  // namespace

int main(int argc, char** argv) {
    bool fastbins = false;
    std::vector<std::string> sizes = {"1000", "10000", "100000"};
    std::vector<std::string> types = {"postfix-cdb", "tcprules-cdb", "sendmail-access", "opensmtpd-table",
                                      "relay-ctrl-dir"};
    int rounds = 3;
    for (int i = 1; i < argc; i += 2) {
        const std::string opt = argv[i];
        if (opt == "--whole") {
            g_whole = true;
            --i;
            continue;
        }
        if (opt == "--glibc-fastbins") {
            fastbins = true;
            --i;
            continue;
        }
        if (i + 1 >= argc) break;
        if (opt == "--sizes") sizes = split(argv[i + 1]);
        else if (opt == "--types") types = split(argv[i + 1]);
        else if (opt == "--rounds") rounds = std::max(1, std::atoi(argv[i + 1]));
    }
    if (!fastbins) rp::util::tune_allocator_for_latency();  // as relaypermit run does
    std::printf("| export | permits | fresh (ms) | loop held (ms) | of which snapshot (ms) |\n|---|---|---|---|---|\n");
    for (const auto& t : types) {
        for (const auto& s : sizes) {
            const auto n = static_cast<std::size_t>(std::stoull(s));
            const auto f = measure(t, n, rounds);
            std::printf("| %s | %zu | %.1f | %.1f | %.1f |\n", t.c_str(), n, f.fresh_ms, f.held_ms, f.snapshot_ms);
            std::fflush(stdout);
        }
    }
    return 0;
}
