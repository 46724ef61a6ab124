"""Keeps a benchmark's input file in the page cache while the benchmark runs.

`with pinned(path):` maps the whole file read-only, faults every page in (MAP_POPULATE) and
holds the mapping until the block ends. A page that some process maps is out of reach of
proactive reclaim that pages out only unmapped page cache: the second host of
docs/benchmarks.md runs DAMON with such a scheme (pageout of file pages unused for about a
minute), which evicted up to two thirds of the 1 GB log between runs, so that `cat` and `scan`
timed re-reads from disk by turns. The mapping changes nothing for the commands measured: they
read the same cached pages with their own read() or mmap().
"""

from __future__ import annotations

import contextlib
import mmap
import os
from typing import Iterator


@contextlib.contextmanager
def pinned(path: str) -> Iterator[None]:
    fd = os.open(path, os.O_RDONLY)
    try:
        if os.fstat(fd).st_size == 0:
            yield
            return
        flags = mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0)
        with mmap.mmap(fd, 0, flags=flags, prot=mmap.PROT_READ):
            yield
    finally:
        os.close(fd)
