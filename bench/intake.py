"""Intake throughput and memory: rows/s for parse + validate, and peak RSS, for 10k and 100k rows.

Each size runs in a fresh child process so its peak RSS is its own. Figures are printed, never asserted.
Usage: python bench/intake.py [--rows 10000 100000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import generate, peak_rss_mib  # noqa: E402


def measure(path: str) -> dict[str, float]:
    """Runs in the child: parse + validate + merge accounting, as ``registrar validate`` does."""
    from shared.intake import DeviceRow, open_devices
    from shared.intake.merge import Merger

    start = time.perf_counter()
    merger = Merger()
    accepted = 0
    with open(path, "rb") as stream:
        for outcome in open_devices(stream, path):
            accepted += isinstance(outcome, DeviceRow)
            merger.add(outcome)
    result = merger.result()
    elapsed = time.perf_counter() - start
    rows = result.total
    return {
        "rows": rows,
        "accepted": accepted,
        "seconds": round(elapsed, 3),
        "rows_per_second": round(rows / elapsed),
        "peak_rss_mib": peak_rss_mib(),
        "file_mib": round(os.path.getsize(path) / 2**20, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child)))
        return
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for rows in args.rows:
            path = Path(tmp) / f"rows-{rows}.csv"
            generate(path, rows)
            out = subprocess.run(
                [sys.executable, __file__, "--child", str(path)], capture_output=True, text=True, check=True
            )
            figures = json.loads(out.stdout)
            results.append(figures)
            print(
                f"{rows:>7} rows  {figures['file_mib']:>6} MiB file  {figures['rows_per_second']:>7} rows/s  "
                f"peak RSS {figures['peak_rss_mib']} MiB"
            )
            path.unlink()
    results_dir = ROOT / "bench" / "results"
    results_dir.mkdir(exist_ok=True)
    (results_dir / "intake.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
