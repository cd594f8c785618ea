"""The Devices API over a large fleet: storage calls and time per filtered page.

    .venv/bin/python bench/devices_api.py --devices 100000

Starts Azurite, stores N devices (states, profiles and partners mixed, as list queries see them), then
asks the status API (``shared/status_api.list_devices``, what the portal's Devices page and
``GET /api/devices`` use) for filtered pages, counting every HTTP request the table client sends.
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from azure.core.pipeline.transport import RequestsTransport
from azure.data.tables import TableServiceClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from registrar.localhost.azurite import Azurite  # noqa: E402
from shared.state import DeviceRecord, StateStore  # noqa: E402
from shared.status_api import list_devices  # noqa: E402

STATES = ["ready"] * 70 + ["active"] * 15 + ["failed"] * 5 + ["pending"] * 5 + ["queued"] * 3 + ["inactive"] * 2


class CountingTransport(RequestsTransport):
    calls = 0

    def send(self, request, **kwargs):  # type: ignore[override]
        CountingTransport.calls += 1
        return super().send(request, **kwargs)


def device(n: int) -> DeviceRecord:
    return DeviceRecord(
        serial=f"SN{n:07d}",
        profile="kiosk" if n % 10 == 0 else "standard",
        partner="contoso" if n % 4 == 0 else "",
        group_tag="Standard",
        hash_digest=f"{n:064x}",
        upload_id=f"{n // 5000:032x}",
        file=f"device-uploads/standard/batch-{n // 5000}.csv",
        line=n % 5000 + 2,
        state=STATES[n % len(STATES)],
        message="",
        assigned_user=f"user{n}@contoso.test" if n % 3 == 0 else "",
    )


def fill(store: StateStore, count: int) -> None:
    def batch(start: int) -> None:
        store.devices.submit_transaction(
            [("upsert", device(n).to_entity()) for n in range(start, min(count, start + 100))]
        )

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(batch, range(0, count, 100)))


QUERIES = [
    ("first page, no filter", {"top": "100"}),
    ("state=Registration failed", {"state": "Registration failed", "top": "100"}),
    ("profile=kiosk, partner=contoso", {"profile": "kiosk", "partner": "contoso", "top": "100"}),
    ("state=Queued, partner=contoso (1 %)", {"state": "Queued", "partner": "contoso", "top": "100"}),
    ("serial starts with SN00421", {"serial": "SN00421", "top": "100"}),
]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--devices", type=int, default=100_000)
    args = parser.parse_args()
    with Azurite() as storage:
        service = TableServiceClient.from_connection_string(storage.connection_string, transport=CountingTransport())
        store = StateStore(service, "bench")
        started = time.monotonic()
        fill(store, args.devices)
        print(f"stored {args.devices:,} devices in {time.monotonic() - started:.0f} s")
        print("| query | devices on the page | storage calls | ms |")
        print("|---|---|---|---|")
        for label, query in QUERIES:
            CountingTransport.calls = 0
            started = time.perf_counter()
            body = list_devices(store, query, "http://bench/api/devices")
            ms = (time.perf_counter() - started) * 1000
            print(f"| {label} | {body['count']} | {CountingTransport.calls} | {ms:.0f} |")
            if body.get("cursor"):
                CountingTransport.calls = 0
                started = time.perf_counter()
                second = list_devices(store, query | {"cursor": body["cursor"]}, "http://bench/api/devices")
                ms = (time.perf_counter() - started) * 1000
                print(f"| {label}, next page | {second['count']} | {CountingTransport.calls} | {ms:.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
