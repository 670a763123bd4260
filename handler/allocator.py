"""glibc's malloc told to keep freed memory for the next request instead of handing it back to the kernel.

glibc serves blocks over a threshold (128 KB, rising to at most 32 MB as such blocks are freed)
with mmap and returns them with munmap, and trims the heap's free top beyond twice that. A big
photo's request allocates tens of MB at a time (the decoded photo, its resized copies, the
detector's padded input and blob), so each such request faulted all of them in afresh: on
a 12 MP photo 20 % of the time. Setting both thresholds once keeps that memory mapped in the
process (its RSS stays at its high-water mark, which a serverless sandbox has reserved anyway).
docs/decisions.md, "Freed memory kept".
"""

from __future__ import annotations

import ctypes
import os

# mallopt's parameters (glibc's malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
# The largest mmap threshold glibc accepts on 64-bit (HEAP_MAX_SIZE / 2): blocks above it are still mapped.
MMAP_THRESHOLD = 32 * 1024 * 1024
TRIM_THRESHOLD = 1024 * 1024 * 1024
# glibc's own variables for the same settings: when the environment sets either, it has the last word.
GLIBC_VARIABLES = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")


def keep_freed_memory() -> bool:
    """Set glibc's mmap and trim thresholds unless the environment sets them; False where not glibc."""
    if any(name in os.environ for name in GLIBC_VARIABLES):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (macOS, musl): nothing to tune
        return False
    return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(libc.mallopt(M_TRIM_THRESHOLD,
                                                                                      TRIM_THRESHOLD))
