"""A tiny Graph budget still registers every device, none lost and none imported twice; and the demo
runs end to end from upload to final state."""

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from registrar.localhost.host import LocalHost
from shared.states import DeviceState
from tests.helpers import csv_bytes, portal_row
from tests.integration.conftest import upload

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.anyio, pytest.mark.integration]


async def test_tiny_throttle_budget_registers_every_device_once(settings, graph, host):
    graph.ctl.configure(
        throttle={
            "enabled": True,
            "app_writes": 2,
            "tenant_writes": 3,
            "app_requests": 6,
            "tenant_requests": 8,
            "window_seconds": 1,
            # with the header, so retries come within the test's time (header-less 429s back off for
            # minutes: test_graph_rough_edges.py covers them)
            "intune_retry_after": True,
        }
    )
    small = LocalHost(settings, batch_size=4, reconcile_interval=0)
    serials = [f"TH-{n:03d}" for n in range(30)]
    upload(settings, "device-uploads", "standard/many.csv", csv_bytes([portal_row(s) for s in serials]))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # retries are scheduled messages: they come back after Retry-After
        await small.step()
        states = {d.serial: d.state for d in small.runtime.store.all_devices()}
        if len(states) == 30 and all(s == DeviceState.READY for s in states.values()):
            break
        await asyncio.sleep(0.3)
    assert states == dict.fromkeys(serials, DeviceState.READY)
    tenant = graph.ctl.state()
    assert sorted(d["serialNumber"] for d in tenant["devices"]) == serials  # exactly one record each
    counters = graph.ctl.counters()
    assert counters["throttled"] > 0
    assert small.bus.counters.dead_lettered == 0 and small.counters.failed_batches == 0


def test_demo_runs_from_upload_to_final_state():
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    result = subprocess.run(
        [sys.executable, "-m", "registrar", "demo"], capture_output=True, text=True, cwd=ROOT, env=env, timeout=300
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "14 Ready for user, 1 Registration failed" in out  # the progress line when registration is done
    assert "group membership settled:" in out
    assert (
        "reconcile repaired it: 1 membership restored, 1 conflicting membership removed, 1 group tag "
        "restored; 4 devices Active"
    ) in out
    assert "4 Active, 10 Ready for user, 1 Registration failed" in out
    assert "Device claimed by another organization: check with your device supplier" in out
    assert "Device already registered: no further action required" in out
    for code in (
        "hash.serial_mismatch",
        "user.invalid",
        "hash.truncated",
        "serial.conflict_existing",
        "group_tag.profile_mismatch",
        "duplicate.known",
    ):
        assert code in out, code
    assert "Graph import calls: 1 for 14 registered devices" in out
