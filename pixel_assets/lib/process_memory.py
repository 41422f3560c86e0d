"""Resident memory of this process, read from /proc/self/status (Linux).

Why not `resource.getrusage(...).ru_maxrss`: Linux carries the high-water mark across fork and
execve, so a probe started by a large parent (a pytest worker after training tests) reports the
parent's peak as its own, and a peak measured over a baseline comes out near zero. VmHWM belongs
to the process's own address space, and writing "5" to /proc/self/clear_refs resets it to the
current resident size, so a phase's own peak can be read.
"""

from __future__ import annotations

import resource


def _status_bytes(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def current_rss_bytes() -> int:
    value = _status_bytes("VmRSS")
    return value if value is not None else peak_rss_bytes()


def peak_rss_bytes() -> int:
    """This address space's resident high-water mark (since the last reset_peak_rss)."""
    value = _status_bytes("VmHWM")
    return value if value is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def reset_peak_rss() -> bool:
    """Reset the high-water mark to the current resident size; False where the kernel refuses."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def virtual_size_bytes() -> int | None:
    return _status_bytes("VmSize")
