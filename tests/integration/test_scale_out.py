"""Scale-out like Flex Consumption: four register instances and the timer at once, on one queue, one state
store and one Graph write budget. Every device is imported exactly once, none is lost, each ends in its
profile group, and the writes of all instances together never exceed the budget in any window."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import pytest

from registrar.localhost.host import LocalHost
from shared.states import DeviceState
from tests.helpers import csv_bytes, portal_row
from tests.integration.conftest import STANDARD_GROUP, upload

pytestmark = [pytest.mark.anyio, pytest.mark.integration, pytest.mark.timeout(400)]

WINDOW = 2.0
INTUNE_WRITES, ENTRA_WRITES = 4, 20  # per WINDOW, shared by every instance; a $batch holds up to 20 writes
DEVICES = 60


def max_in_any_window(times: list[float], window: float) -> int:
    times = sorted(times)
    best, start = 0, 0
    for end, at in enumerate(times):
        while at - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


async def test_four_register_instances_and_the_timer_register_every_device_once_within_the_write_budget(
    settings, graph, host
):
    budget = f"intune={INTUNE_WRITES}/{WINDOW},entra={ENTRA_WRITES}/{WINDOW}"
    shared_settings = replace(settings, graph_write_budget=budget)
    graph.ctl.configure(
        throttle={
            "enabled": True,
            "window_seconds": WINDOW,
            "app_writes": INTUNE_WRITES,
            "tenant_writes": 2 * INTUNE_WRITES,
            "app_requests": 10_000,
            "tenant_requests": 20_000,
            "entra_window_seconds": WINDOW,
            "entra_app_writes": ENTRA_WRITES,
        }
    )
    scale = LocalHost(shared_settings, batch_size=5, reconcile_interval=1.0)
    serials = [f"SO-{n:03d}" for n in range(DEVICES)]
    for part in range(3):
        rows = [portal_row(s) for s in serials[part::3]]
        upload(settings, "device-uploads", f"standard/part-{part}.csv", csv_bytes(rows))
    stop = asyncio.Event()
    running = asyncio.create_task(scale.run(stop, poll_interval=0.2, workers=4))
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline:
            await asyncio.sleep(1.0)
            devices = {d.serial: d for d in scale.runtime.store.all_devices()}
            members = next(g["members"] for g in graph.ctl.state()["groups"] if g["id"] == STANDARD_GROUP)
            in_group = {d.serial for d in devices.values() if d.entra_object_id and d.entra_object_id in members}
            if len(devices) == DEVICES and all(d.state == DeviceState.READY for d in devices.values()):
                if len(in_group) == DEVICES:
                    break
    finally:
        stop.set()
        await running
    assert {s: d.state for s, d in devices.items()} == dict.fromkeys(serials, DeviceState.READY)
    assert len(in_group) == DEVICES, "every device in its profile group"
    assert graph.ctl.state()["importedSerials"] == dict.fromkeys(serials, 1), "exactly one import per device"
    assert len([n for n in scale.counters.batches_by_instance.values() if n]) >= 2, "work spread over instances"
    assert scale.counters.failed_batches == 0
    writes = graph.ctl.writes()
    for family, budget in (("intune", INTUNE_WRITES), ("entra", ENTRA_WRITES)):
        times = [w["at"] for w in writes if w["family"] == family]
        assert times and max_in_any_window(times, WINDOW) <= budget, family
    assert graph.ctl.counters()["throttled"] == 0, "the shared budget kept every instance under Graph's limit"
