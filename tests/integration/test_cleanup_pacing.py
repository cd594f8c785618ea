"""Clean-up of processed import records keeps the budget's pace for the time it is given: throttled, it
waits and goes on instead of leaving the rest to the next timer run."""

from __future__ import annotations

import time

import pytest

from registrar.localhost.host import LocalHost
from shared.config import load_settings
from shared.states import DeviceState
from tests.helpers import csv_bytes, portal_row
from tests.integration.conftest import upload

pytestmark = [pytest.mark.anyio, pytest.mark.integration]


async def test_throttled_clean_up_waits_and_goes_on_within_its_time(env, graph, host):
    settings = load_settings({**env, "RECONCILE_CLEANUP_SECONDS": "0"})  # keep the records for the test
    local = LocalHost(settings, reconcile_interval=0)
    serials = [f"CL-{n:02d}" for n in range(30)]
    upload(settings, "device-uploads", "standard/c.csv", csv_bytes([portal_row(s) for s in serials]))
    for _ in range(6):
        await local.step()
    assert {d.state for d in local.runtime.store.all_devices()} == {DeviceState.READY}
    ids = [r["id"] for r in graph.ctl.state()["imports"]]
    assert len(ids) == 30
    # Graph now takes 10 writes a second from this app: each 20-item $batch gets 10 items throttled.
    graph.ctl.configure(throttle={"enabled": True, "app_writes": 10, "tenant_writes": 10, "window_seconds": 1})
    first = await local.runtime.graph.delete_imports(ids)  # no time given: stops at the first "later"
    assert 0 < len(first) < 30
    rest = [i for i in ids if i not in first]
    second = await local.runtime.graph.delete_imports(rest, until=time.monotonic() + 30)
    assert sorted(first + second) == sorted(ids) and graph.ctl.state()["imports"] == []


async def test_clean_up_throttled_without_retry_after_backs_off_longer_each_time(env, graph, host, monkeypatch):
    """Intune's 429s often come without Retry-After: clean-up then waits, longer each time in a row (the
    exponential backoff learn.microsoft.com/graph/throttling recommends), instead of asking again at once."""
    import shared.graph.autopilot as autopilot

    monkeypatch.setattr(autopilot, "FIRST_BACKOFF", 0.5)  # 0.5, 1, 2, ... s: the test's time, same doubling
    settings = load_settings({**env, "RECONCILE_CLEANUP_SECONDS": "0"})
    local = LocalHost(settings, reconcile_interval=0)
    serials = [f"NB-{n:02d}" for n in range(12)]
    upload(settings, "device-uploads", "standard/n.csv", csv_bytes([portal_row(s) for s in serials]))
    for _ in range(6):
        await local.step()
    ids = [r["id"] for r in graph.ctl.state()["imports"]]
    assert len(ids) == 12
    # 3 writes in any 2 s, and no Retry-After on the 429s
    graph.ctl.configure(
        throttle={"enabled": True, "app_writes": 3, "tenant_writes": 3, "window_seconds": 2, "intune_retry_after": False}
    )
    slept: list[float] = []
    wait_within = autopilot._wait_within

    async def recorded(seconds: float, until: float | None) -> bool:
        slept.append(seconds)
        return await wait_within(seconds, until)

    monkeypatch.setattr(autopilot, "_wait_within", recorded)
    gone = await local.runtime.graph.delete_imports(ids, until=time.monotonic() + 60)
    assert sorted(gone) == sorted(ids) and graph.ctl.state()["imports"] == []
    assert slept[:3] == [0.5, 1.0, 2.0]  # doubled while throttled in a row
