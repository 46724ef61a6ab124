// Allocator settings for a process that must answer within milliseconds while other threads
// free large numbers of small objects.
//
// Why: glibc keeps freed small chunks (≤ 128 bytes: most user names, std::string buffers of
// permits) in "fast bins" and coalesces them only when some thread next asks for a large block
// (malloc_consolidate), in one pass over all of them, under the arena lock. An export copy of
// 1M permits (a string each, made on the loop's thread, freed on the export worker) left the
// next large allocation on the loop to coalesce a million chunks: 7 ms of lookups held at each
// rewrite (docs/benchmarks.md). Without fast bins a free coalesces at once (a few tens of ns
// more, spread over the frees, on the thread that frees); the per-thread caches (tcache) still
// serve the hot small allocations.
// Thread-safety: call once, at start, before other threads exist. No effect on other allocators.
#pragma once

namespace rp::util {

void tune_allocator_for_latency();

}  // namespace rp::util
