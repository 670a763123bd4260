"""Process facts from /proc (Linux, stdlib only): server pids by port, VmRSS/VmHWM."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit


def children(pid: int) -> list[int]:
    """Direct children of `pid` (every thread's children list)."""
    pids: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            pids.update(int(p) for p in (task / "children").read_text().split())
        except OSError:
            continue
    return sorted(pids)


def cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def server_pids(base_url: str, parent: int | None = None) -> tuple[int, list[int]]:
    """(functions-framework master pid, its worker pids) for a server this process started on base_url's port."""
    port = str(urlsplit(base_url).port)
    for pid in children(parent or os.getpid()):
        args = cmdline(pid)
        if "--port" in args and args[args.index("--port") + 1:][:1] == [port]:
            return pid, children(pid)
    raise LookupError(f"no child process serves port {port}")


def status_kb(pid: int | str, field: str) -> int:
    """A `kB` field of /proc/<pid>/status (VmRSS, VmHWM...)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def reset_peak(pid: int) -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0: write 5 to clear_refs); False if not allowed."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False
