"""Peak memory of the ingest handler (functions/ingest.py) by upload size, against Azurite.

For each size: a synthetic portal CSV (registrar/synthetic.py) is uploaded to Azurite, then a fresh child
process runs ``functions.ingest.main`` on a ``BlobClient`` for it, exactly as the blob trigger's SDK-type
binding calls it (state in Azurite tables; the Service Bus sender discards, counting messages). The child
reports its peak RSS (VmHWM: ru_maxrss would include the parent's peak, Linux carries it into a forked
child) and its RSS before the handler ran (imports and clients), so the growth
due to the upload is visible on its own. Figures are printed, never asserted.

Usage: python bench/ingest_memory.py [--rows 5000 200000] [--json]
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

from common import generate as _generate  # noqa: E402
from common import peak_rss_mib  # noqa: E402


def generate(path: Path, rows: int) -> None:
    _generate(path, rows, prefix="MEM", group_tag="Standard")


CONTAINER = "device-uploads"
PROFILES = {"profiles": {"standard": {"groupTag": "Standard", "groupId": "11111111-1111-4111-8111-111111111111"}}}


def rss_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class CountingSender:
    def __init__(self) -> None:
        self.messages = 0

    def send(self, messages) -> None:
        self.messages += len(messages)


def child(connection: str, blob_name: str, prefix: str) -> dict:
    from azure.storage.blob import BlobServiceClient

    from functions import ingest
    from shared.config import load_settings
    from shared.ingest import IngestContext
    from shared.runtime import Runtime
    from shared.state import StateStore
    from shared.storage import table_service

    settings = load_settings(
        {
            "REGISTRAR_PROFILES": json.dumps(PROFILES),
            "AzureWebJobsStorage": connection,
            "STATE_TABLE_PREFIX": prefix,
            "MAX_UPLOAD_BYTES": str(2 * 1024**3),
            "GRAPH_WRITE_BUDGET": "",
        }
    )
    blobs = BlobServiceClient.from_connection_string(connection)
    sender = CountingSender()

    class BenchRuntime(Runtime):
        @property
        def ingest(self) -> IngestContext:
            return IngestContext(self.settings, self.store, sender, self.write_report)

    rt = BenchRuntime(settings, StateStore(table_service(settings), prefix), sender, blobs, None, None)  # type: ignore[arg-type]
    client = blobs.get_blob_client(CONTAINER, blob_name)
    before = rss_mib()
    start = time.perf_counter()
    upload = ingest.main(client, rt)
    elapsed = time.perf_counter() - start
    return {
        "rows": upload.accepted + upload.duplicates + upload.rejected,
        "accepted": upload.accepted,
        "messages": sender.messages,
        "file_mib": round(client.get_blob_properties().size / 2**20, 1),
        "seconds": round(elapsed, 1),
        "rss_before_mib": round(before, 1),
        "peak_rss_mib": peak_rss_mib(),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, nargs="+", default=[5_000, 200_000])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child", nargs=3, metavar=("CONNECTION", "BLOB", "PREFIX"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(*args.child)))
        return

    from azure.storage.blob import BlobServiceClient

    from registrar.localhost.azurite import Azurite

    results = []
    with Azurite(in_memory=True) as storage, tempfile.TemporaryDirectory() as tmp:
        blobs = BlobServiceClient.from_connection_string(storage.connection_string)
        blobs.create_container(CONTAINER)
        for i, rows in enumerate(args.rows):
            path = Path(tmp) / f"{rows}.csv"
            generate(path, rows)
            name = f"standard/bench-{rows}.csv"
            with open(path, "rb") as fh:
                blobs.get_blob_client(CONTAINER, name).upload_blob(fh, overwrite=True, max_concurrency=2)
            path.unlink()
            out = subprocess.run(  # noqa: S603 - this script, in a fresh interpreter
                [sys.executable, __file__, "--child", storage.connection_string, name, f"bench{i}"],
                check=False,
                capture_output=True,
                text=True,
                cwd=ROOT,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )
            if out.returncode != 0:
                sys.exit(f"{rows:,} rows: the child failed ({out.returncode}):\n{out.stderr[-4000:]}")
            result = json.loads(out.stdout.strip().splitlines()[-1])
            results.append(result)
            if not args.json:
                print(
                    f"{result['rows']:>8,} rows  {result['file_mib']:>7} MiB  {result['seconds']:>7} s  "
                    f"RSS before {result['rss_before_mib']:>6} MiB  peak {result['peak_rss_mib']:>6} MiB",
                    flush=True,
                )
    if args.json:
        print(json.dumps(results, indent=2))
    elif len(results) > 1:
        low, high = results[0]["peak_rss_mib"], results[-1]["peak_rss_mib"]
        print(f"peak RSS {results[-1]['rows']:,} rows vs {results[0]['rows']:,}: {100 * (high - low) / low:+.1f} %")


if __name__ == "__main__":
    main()
