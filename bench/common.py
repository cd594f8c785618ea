"""What the benchmarks share: a synthetic portal CSV of N rows, and a process's own peak memory."""

from __future__ import annotations

from pathlib import Path


def peak_rss_mib() -> float:
    """This process's own peak RSS (VmHWM). Not ru_maxrss: Linux carries a parent's into a forked child."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def generate(path: Path, rows: int, prefix: str = "BENCH", group_tag: str = "") -> None:
    """A portal-format CSV with ``rows`` distinct devices, each with a valid synthetic hardware hash."""
    from registrar.synthetic import build_hash

    with open(path, "w", newline="") as fh:
        fh.write("Device Serial Number,Windows Product ID,Hardware Hash,Group Tag,Assigned User\r\n")
        for n in range(rows):
            serial = f"{prefix}{n:08d}"
            fh.write(f"{serial},,{build_hash(serial, seed=n)},{group_tag},\r\n")
