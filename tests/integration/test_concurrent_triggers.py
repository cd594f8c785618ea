"""The local host runs its triggers at once, as the Functions host does: a slow reconcile does not hold
back a new upload's report."""

from __future__ import annotations

import asyncio
import time

import pytest

from registrar.localhost.host import LocalHost
from shared.storage import blob_service
from tests.helpers import csv_bytes, portal_row
from tests.integration.conftest import upload

pytestmark = [pytest.mark.anyio, pytest.mark.integration, pytest.mark.timeout(120)]


async def test_an_upload_report_appears_within_seconds_while_a_slow_reconcile_runs(settings, graph, host):
    local = LocalHost(settings, reconcile_interval=0.1)
    upload(settings, "device-uploads", "standard/first.csv", csv_bytes([portal_row("CT-1")]))
    stop = asyncio.Event()
    running = asyncio.create_task(local.run(stop, poll_interval=0.2))
    try:
        deadline = time.monotonic() + 30
        while local.runtime.store.get_device("CT-1") is None or local.counters.timer_runs == 0:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.2)
        graph.ctl.configure(faults={"latency_ms": 8000})  # every Graph call now takes 8 s: reconcile crawls
        await asyncio.sleep(1.0)  # the timer is inside a Graph call by now
        runs = local.counters.timer_runs
        upload(settings, "device-uploads", "standard/second.csv", csv_bytes([portal_row("CT-2")]))
        started = time.monotonic()
        report = blob_service(settings).get_blob_client("device-uploads", "_reports/standard/second.csv.result.json")
        while not report.exists():
            assert time.monotonic() - started < 5, "the report waited for the reconcile"
            await asyncio.sleep(0.2)
        assert local.counters.timer_runs <= runs + 1  # the slow reconcile was still going
    finally:
        graph.ctl.configure(faults={"latency_ms": 0})
        stop.set()
        await running


def test_one_blob_event_delivered_twice_at_once_registers_each_device_once(settings, graph, host):
    """Event Grid delivers at least once and the blob trigger keeps no receipts with the Event Grid source, so
    two instances can ingest the same upload at the same time: the outcome must be the one of a single run."""
    import threading

    local = LocalHost(settings, reconcile_interval=0)
    serials = [f"DUP-{n:03d}" for n in range(40)]
    upload(settings, "device-uploads", "standard/twice.csv", csv_bytes([portal_row(s) for s in serials]))
    blob = blob_service(settings).get_blob_client("device-uploads", "standard/twice.csv")
    errors: list[BaseException] = []

    def deliver() -> None:
        try:
            local._ingest(blob)
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    store = local.runtime.store
    (record,) = [u for u in store.all_uploads() if u.blob_name == "standard/twice.csv"]
    assert record.status == "complete" and record.accepted == 40, record
    assert sorted(r.outcome for r in store.rows_of(record.upload_id)) == ["accepted"] * 40
    assert local.bus.approximate_count() == 40  # one message per device (a copy is dropped as a duplicate)
