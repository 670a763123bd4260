"""glibc's thresholds (handler/allocator.py): freed big buffers stay in the process for the next request,
unless the environment sets glibc's own variables. Each case runs in a fresh interpreter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROBE = r"""
import importlib.util, json, numpy as np
spec = importlib.util.spec_from_file_location("allocator", "handler/allocator.py")  # not the package: no nets
allocator = importlib.util.module_from_spec(spec)
spec.loader.exec_module(allocator)
def rss_mb():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20
applied = allocator.keep_freed_memory()
before = rss_mb()
block = np.ones(24 * 2**20, np.uint8)  # a decoded photo's worth, under the 32 MB mmap ceiling
del block
print(json.dumps({"applied": applied, "kept_mb": rss_mb() - before}))
"""


def _probe(**env: str) -> dict:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env={**clean, **env},
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc is Linux's")
def test_a_freed_photo_sized_block_stays_in_the_process() -> None:
    kept = _probe()
    assert kept["applied"] and kept["kept_mb"] > 20
    returned = _probe(MALLOC_MMAP_THRESHOLD_="131072")  # glibc's default, set by hand: ours steps aside
    assert not returned["applied"] and returned["kept_mb"] < 4
