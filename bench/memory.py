"""Peak resident memory of a process, from the kernel's own high-water mark.

`VmHWM` in /proc/<pid>/status is the peak RSS; writing 5 to /proc/<pid>/clear_refs
resets it to the current RSS (Linux ≥ 4.0), so one long-lived process can be
measured phase by phase without a sampling thread that could miss a short peak.
"""

from pathlib import Path


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/{pid}/status")


def reset_peak(*pids: int) -> None:
    """Start a new phase: the peak becomes the current RSS."""
    for pid in pids:
        Path(f"/proc/{pid}/clear_refs").write_text("5")


def peak_mb(pid: int) -> float:
    """Peak RSS since the last `reset_peak` (or since the process started), in MiB."""
    return _status_kb(pid, "VmHWM") / 1024


def rss_mb(pid: int) -> float:
    return _status_kb(pid, "VmRSS") / 1024
