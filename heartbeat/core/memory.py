"""How much memory this process may still take: checked before a large allocation, not after it fails.

The smaller of what the kernel says is available (``MemAvailable``: free memory plus what it can
reclaim without swapping) and what this process's cgroup still allows (a container's limit), so that
a job refused here would otherwise have swapped or been killed by the OOM killer.
"""

from __future__ import annotations

import os
from pathlib import Path


def available_bytes() -> int | None:
    """Bytes this process may still allocate, or None where the system does not say (not Linux)."""
    found = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found.append(int(line.split()[1]) * 1024)
                break
    except (OSError, ValueError, IndexError):
        pass
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit != "max":
            used = int(Path("/sys/fs/cgroup/memory.current").read_text().strip())
            found.append(max(0, int(limit) - used))
    except (OSError, ValueError):
        pass
    if not found:
        try:
            found.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (OSError, ValueError, AttributeError):
            return None
    return min(found)
