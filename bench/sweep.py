"""The upload sweep costs O(new uploads), not O(all uploads): storage calls and time of one sweep.

    .venv/bin/python bench/sweep.py [--new 10,100] [--old 100000] [--old-blobs 10000]   (make bench-sweep)

Starts Azurite (in memory) and runs the reconcile timer's sweep (``shared/sweep.py``, as
``functions/reconcile.py`` calls it) twice for each size N of ``--new``: first on an empty data account,
then after ``--old`` uploads were processed before (an upload record with status "complete" each, their
journal events long deleted by earlier sweeps, as in production). Each run has N new journal events in
two flavours:

- *confirmed*: N new uploads the blob trigger already ingested (the usual case: every upload's event
  also goes to the journal). The sweep only confirms each one.
- *missed*: N new uploads whose trigger event was dropped (``FunctionNotFound``, host down). The sweep
  ingests each one (a one-device CSV) through ``functions/ingest.py``.

Every HTTP request any storage client sends is counted (by service and operation) and split into the
sweep's own calls and the calls of the ingest runs it starts. The sweep never lists an upload container
and never scans the uploads table, so its own calls must be the same with 0 and with 100,000 old uploads.
For contrast it prints what merely *listing* the upload containers costs at the old state (a listing sweep
would pay that on every timer run, plus one record lookup per blob).

The old state: ``--old`` upload records (Azure Table batch transactions, cheap) and ``--old-blobs`` real
blobs in the upload containers (default 10,000: Azurite takes about 3 ms per blob here, so the full
100,000 blobs add about 5 minutes; pass ``--old-blobs 100000`` for them). The sweep's cost cannot depend on
either: it reads only the journal queue, the dead-letter container, and per event one blob's properties
and one record. Writes bench/results/sweep.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from azure.core.pipeline.transport import RequestsTransport

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from functions import ingest  # noqa: E402
from registrar.localhost.azurite import Azurite  # noqa: E402
from registrar.localhost.blob_trigger import blob_created_event  # noqa: E402
from registrar.localhost.environment import DEFAULT_PROFILES, local_env  # noqa: E402
from registrar.localhost.servicebus import LocalServiceBusQueue  # noqa: E402
from registrar.synthetic import build_hash  # noqa: E402
from shared.config import REPORTS_PREFIX, load_settings  # noqa: E402
from shared.ingest import upload_id_for  # noqa: E402
from shared.runtime import Runtime  # noqa: E402
from shared.state import UploadRecord  # noqa: E402
from shared.storage import blob_service, queue_service, table_service  # noqa: E402
from shared.sweep import UploadSweep  # noqa: E402

HEADER = "Device Serial Number,Windows Product ID,Hardware Hash,Group Tag,Assigned User\r\n"


class Calls:
    """Every storage request of this process, by phase ("sweep" or "ingest"), service and operation."""

    def __init__(self, ports: dict[str, int]) -> None:
        self.services = {port: name for name, port in ports.items()}
        self.counts: Counter[tuple[str, str, str]] = Counter()
        self.counting = False
        self.phase = threading.local()
        original = RequestsTransport.send
        calls = self

        def send(transport, request, **kwargs):  # type: ignore[no-untyped-def]
            if calls.counting:
                calls.counts[(getattr(calls.phase, "name", "sweep"), *calls.describe(request))] += 1
            return original(transport, request, **kwargs)

        RequestsTransport.send = send  # type: ignore[method-assign]

    def describe(self, request) -> tuple[str, str]:  # type: ignore[no-untyped-def]
        url = urlparse(request.url)
        service = self.services.get(url.port, "?")
        comp = parse_qs(url.query).get("comp", [""])[0]
        path = url.path.split("/")
        if service == "blob":
            container = path[2] if len(path) > 2 else ""
            op = {"list": "list blobs"}.get(comp, f"{request.method} blob")
            if comp == "list" and container:
                op = "list blobs (upload container)" if container.startswith(("device-", "partner-")) else op
        elif service == "queue":
            op = f"{request.method} message" if "messages" in url.path else f"{request.method} queue"
        else:
            op = f"{request.method} {'batch' if '$batch' in url.path else 'entity/query'}"
        return service, op

    def take(self) -> Counter[tuple[str, str, str]]:
        counts, self.counts = self.counts, Counter()
        return counts


def one_device_csv(serial: str) -> bytes:
    return (HEADER + f"{serial},,{build_hash(serial)},,\r\n").encode("ascii")


def make_old_state(settings, store, old: int, old_blobs: int) -> dict:
    """``old`` uploads processed long ago: a complete upload record each, ``old_blobs`` of them with a real
    blob. No journal message: earlier sweeps deleted their events."""
    started = time.monotonic()
    containers = [blob_service(settings).get_container_client(c) for c in settings.containers]

    def put_blobs(start: int) -> None:
        for n in range(start, min(old_blobs, start + 500)):
            containers[n % len(containers)].upload_blob(f"standard/old-{n:06d}.csv", b"x" * 256, overwrite=True)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(put_blobs, range(0, old_blobs, 500)))
    blobs_seconds = time.monotonic() - started

    def put_records(start: int) -> None:
        batch = []
        for n in range(start, min(old, start + 100)):
            container = settings.containers[n % len(settings.containers)]
            record = UploadRecord(
                upload_id=upload_id_for(container, f"standard/old-{n:06d}.csv", f'"0x8D{n:012X}"'),
                container=container,
                blob_name=f"standard/old-{n:06d}.csv",
                profile="standard",
                partner=container.removeprefix("partner-") if container != "device-uploads" else "",
                status="complete",
                accepted=1,
            )
            batch.append(("upsert", record.to_entity()))
        store.uploads.submit_transaction(batch)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(put_records, range(0, old, 100)))
    return {
        "upload_records": old,
        "blobs": old_blobs,
        "seconds_to_create": round(time.monotonic() - started, 1),
        "blob_seconds": round(blobs_seconds, 1),
    }


def listing_cost(settings, calls: Calls) -> dict:
    """What only listing the upload containers costs (a listing sweep's first step, on every run)."""
    calls.counting = True
    started = time.monotonic()
    listed = 0
    for container in settings.containers:
        listed += sum(
            1
            for b in blob_service(settings).get_container_client(container).list_blobs()
            if not b.name.startswith(REPORTS_PREFIX)
        )
    seconds = time.monotonic() - started
    calls.counting = False
    return {"blobs_listed": listed, "storage_calls": sum(calls.take().values()), "seconds": round(seconds, 2)}


def new_uploads(settings, rt, n: int, tag: str, flavour: str) -> None:
    """N new uploads with their journal events; for "confirmed" the trigger ran them (ingested now)."""
    blobs = blob_service(settings)
    journal = queue_service(settings).get_queue_client(settings.upload_events_queue)
    old_enough = (datetime.now(UTC) - timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    for i in range(n):
        container = settings.containers[i % len(settings.containers)]
        name = f"standard/{tag}-{flavour}-{i:05d}.csv"
        data = one_device_csv(f"SW{tag.upper()}{flavour[0].upper()}{i:05d}")
        client = blobs.get_blob_client(container, name)
        etag = client.upload_blob(data, overwrite=True)["etag"]
        if flavour == "confirmed":
            ingest.main(client, rt)  # the blob trigger's run
        event = blob_created_event(container, name, etag, len(data), blobs.account_name)
        event["eventTime"] = old_enough  # past the grace period: the sweep decides now
        journal.send_message(json.dumps(event))


def sweep_once(settings, rt, calls: Calls) -> dict:
    def counted_ingest(client):  # type: ignore[no-untyped-def]
        calls.phase.name = "ingest"
        try:
            return ingest.main(client, rt)
        finally:
            calls.phase.name = "sweep"

    sweep = UploadSweep(settings, blob_service(settings), queue_service(settings), rt.store, counted_ingest)
    calls.phase.name = "sweep"
    calls.counting = True
    started = time.monotonic()
    summary = sweep.run()
    seconds = time.monotonic() - started
    calls.counting = False
    counts = calls.take()
    own = Counter({(s, op): n for (phase, s, op), n in counts.items() if phase == "sweep"})
    return {
        "seconds": round(seconds, 2),
        "sweep_calls": sum(own.values()),
        "ingest_calls": sum(n for (phase, _, _), n in counts.items() if phase == "ingest"),
        "upload_container_listings": sum(n for (_, op), n in own.items() if op.startswith("list blobs (upload")),
        "by_operation": {f"{s} {op}": n for (s, op), n in sorted(own.items())},
        "events": summary.events,
        "ingested": len(summary.ingested),
        "already": summary.already,
        "failed": len(summary.failed),
    }


def run(sizes: list[int], old: int, old_blobs: int) -> dict:
    figures: dict = {"new": sizes, "old_uploads": old, "runs": []}
    with Azurite(in_memory=True) as storage:
        settings = load_settings(local_env(storage.connection_string, "http://127.0.0.1:9", DEFAULT_PROFILES))
        calls = Calls(storage.ports)
        sender = LocalServiceBusQueue(queue_service(settings), table_service(settings), settings.queue_name, create=True)
        rt = Runtime.build(settings, sender=sender)
        for container in [*settings.containers, settings.upload_deadletter_container]:
            blob_service(settings).create_container(container)
        queue_service(settings).create_queue(settings.upload_events_queue)

        def measure(state: str) -> None:
            for n in sizes:
                for flavour in ("confirmed", "missed"):
                    new_uploads(settings, rt, n, f"{state[:1]}{n}", flavour)
                    result = sweep_once(settings, rt, calls)
                    assert result["events"] == n and result["failed"] == 0, result
                    assert result["ingested"] == (n if flavour == "missed" else 0), result
                    figures["runs"].append({"old_uploads": state, "new": n, "flavour": flavour, **result})
                    print(
                        f"{state:>9} old | {n:>4} new {flavour:<9} | sweep's own calls {result['sweep_calls']:>5}"
                        f" ({result['sweep_calls'] / n:.2f}/event) | ingest calls {result['ingest_calls']:>5}"
                        f" | {result['seconds']:>6.2f} s ({1000 * result['seconds'] / n:.0f} ms/event)"
                        f" | upload-container listings {result['upload_container_listings']}",
                        flush=True,
                    )

        measure("0")
        print(f"creating {old:,} old uploads ({old_blobs:,} with a real blob) ...", flush=True)
        figures["old_state"] = make_old_state(settings, rt.store, old, old_blobs)
        print(f"  done in {figures['old_state']['seconds_to_create']} s", flush=True)
        measure(f"{old:,}")
        figures["listing_for_contrast"] = listing_cost(settings, calls)
        last = figures["runs"][-1]
        print(f"sweep's own calls, {last['new']} missed events, by operation: {last['by_operation']}")
        listing = figures["listing_for_contrast"]
        print(
            f"for contrast, listing the upload containers at this state: {listing['blobs_listed']:,} blobs,"
            f" {listing['storage_calls']} calls, {listing['seconds']} s (a listing sweep pays this every run,"
            f" plus one record lookup per blob: {old:,} more calls at {old:,} uploads)"
        )
    return figures


def main() -> None:
    logging.getLogger("registrar").setLevel(logging.ERROR)  # the sweep warns about every missed upload
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--new", default="10,100", help="comma-separated numbers of new events per sweep")
    parser.add_argument("--old", type=int, default=100_000, help="uploads processed before (records)")
    parser.add_argument("--old-blobs", type=int, default=10_000, help="of those, how many have a real blob")
    args = parser.parse_args()
    sizes = [int(n) for n in args.new.split(",") if n.strip()]
    figures = run(sizes, args.old, min(args.old_blobs, args.old))
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "sweep.json").write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
