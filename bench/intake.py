"""Intake throughput and memory: rows/s for parse + validate + merge, and peak RSS, for 10k and 100k rows,
in one process (``--workers 1``) and with worker processes checking the rows (``shared/intake/parallel.py``).

Each size and worker count runs in a fresh child process, so its figures are its own and include starting
the workers (and the forkserver they are forked from). The workers' and the forkserver's peak RSS (VmHWM)
and CPU time are sampled from /proc every 20 ms (CPU can miss a process's last 20 ms). Figures are
printed, never asserted; ``--repeat N`` keeps the fastest of N runs, for a shared machine.
Usage: python bench/intake.py [--rows 10000 100000] [--workers 1 2] [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import generate, peak_rss_mib  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


class Descendants(threading.Thread):
    """Samples this process's descendants: its children (the forkserver and its resource tracker) and
    their children (the workers, forked by the forkserver). Keeps each one's peak RSS and CPU seconds."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak_mib: dict[int, float] = {}
        self.cpu_seconds: dict[int, float] = {}
        self.depth: dict[int, int] = {}
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(0.02):
            self.sample()

    def stop(self) -> None:
        self._stop_event.set()
        self.join()
        self.sample()

    def sample(self) -> None:
        pending = [(os.getpid(), 0)]
        while pending:
            parent, depth = pending.pop()
            for pid in _children(parent):
                pending.append((pid, depth + 1))
                self.depth[pid] = depth + 1
                for line in _read(f"/proc/{pid}/status").splitlines():
                    if line.startswith("VmHWM:"):
                        self.peak_mib[pid] = round(int(line.split()[1]) / 1024, 1)
                stat = _read(f"/proc/{pid}/stat").rsplit(")", 1)[-1].split()
                if len(stat) > 12:  # utime and stime, in clock ticks
                    self.cpu_seconds[pid] = (int(stat[11]) + int(stat[12])) / TICKS

    def figures(self, depth: int, rows: int) -> tuple[list[float], float]:
        """Peak RSS of each process at that depth, and their CPU time in us per row."""
        pids = [pid for pid, d in self.depth.items() if d == depth]
        return sorted(self.peak_mib.get(p, 0.0) for p in pids), round(
            sum(self.cpu_seconds.get(p, 0.0) for p in pids) / rows * 1e6, 2
        )


def _children(pid: int) -> list[int]:
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:  # it has ended
        return []
    return [int(child) for thread in threads for child in _read(f"/proc/{pid}/task/{thread}/children").split()]


def _read(path: str) -> str:
    try:
        with open(path) as fh:
            return fh.read()
    except OSError:  # the process ended between two reads
        return ""


def measure(path: str, workers: int) -> dict[str, object]:
    """Runs in the child: parse + validate + merge accounting, as ``registrar validate`` does."""
    from shared.intake import DeviceRow
    from shared.intake.merge import Merger
    from shared.intake.parallel import open_devices_parallel

    others = Descendants()
    others.start()
    start, cpu = time.perf_counter(), time.process_time()
    merger = Merger()
    accepted = 0
    with open(path, "rb") as stream:
        for outcome in open_devices_parallel(stream, path, workers=workers):
            accepted += isinstance(outcome, DeviceRow)
            merger.add(outcome)
    result = merger.result()
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    others.stop()
    rows = result.total
    support_rss, support_cpu = others.figures(1, rows)
    workers_rss, workers_cpu = others.figures(2, rows)
    return {
        "rows": rows,
        "workers": workers,
        "accepted": accepted,
        "seconds": round(elapsed, 3),
        "rows_per_second": round(rows / elapsed),
        "peak_rss_mib": peak_rss_mib(),
        "workers_peak_rss_mib": workers_rss,
        "forkserver_peak_rss_mib": support_rss,
        "cpu_us_per_row": round(cpu / rows * 1e6, 2),
        "workers_cpu_us_per_row": workers_cpu,
        "forkserver_cpu_us_per_row": support_cpu,
        "file_mib": round(os.path.getsize(path) / 2**20, 1),
    }


def _line(f: dict) -> str:
    text = f"{f['rows']:>7} rows  {f['file_mib']:>6} MiB file  {f['workers']} worker(s)  "
    text += f"{f['rows_per_second']:>7} rows/s  "
    if f["workers"] == 1:
        return text + f"peak RSS {f['peak_rss_mib']} MiB  CPU {f['cpu_us_per_row']} us/row"
    workers = " + ".join(map(str, f["workers_peak_rss_mib"]))
    support = " + ".join(map(str, f["forkserver_peak_rss_mib"]))
    return text + (
        f"peak RSS {f['peak_rss_mib']} MiB, workers {workers}, forkserver and its tracker {support}  "
        f"CPU us/row {f['cpu_us_per_row']} + workers {f['workers_cpu_us_per_row']} "
        f"+ forkserver {f['forkserver_cpu_us_per_row']}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="1 = the one-process path")
    parser.add_argument("--repeat", type=int, default=1, help="runs per figure; the fastest is kept")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.workers[0])))
        return
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for rows in args.rows:
            path = Path(tmp) / f"rows-{rows}.csv"
            generate(path, rows)
            for workers in args.workers:
                runs = []
                for _ in range(args.repeat):
                    command = [sys.executable, __file__, "--child", str(path), "--workers", str(workers)]
                    out = subprocess.run(command, capture_output=True, text=True, check=True)
                    runs.append(json.loads(out.stdout))
                figures = max(runs, key=lambda f: f["rows_per_second"])
                results.append(figures)
                print(_line(figures), flush=True)
            path.unlink()
    results_dir = ROOT / "bench" / "results"
    results_dir.mkdir(exist_ok=True)
    (results_dir / "intake.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
