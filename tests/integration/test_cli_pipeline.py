"""``upload`` and ``status`` against real Azurite, configured through environment variables."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import csv_bytes, portal_row

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.anyio, pytest.mark.integration]


def cli(env, *args):
    return subprocess.run(
        [sys.executable, "-m", "registrar", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        timeout=120,
    )


async def test_upload_then_status_shows_the_device(env, host, tmp_path):
    path = tmp_path / "march.csv"
    path.write_bytes(csv_bytes([portal_row("CLI-1")]))
    result = cli(env, "upload", str(path), "--profile", "standard", "--partner", "contoso")
    assert result.returncode == 0, result.stderr
    assert "partner-contoso/standard/march.csv" in result.stdout
    for _ in range(4):
        await host.step()
    status = cli(env, "status", "--json")
    assert status.returncode == 0, status.stderr
    (device,) = json.loads(status.stdout)
    assert (device["serial"], device["partner"], device["state"]) == ("CLI-1", "contoso", "Ready for user")
    table = cli({**env, "COLUMNS": "200"}, "status")
    assert "CLI-1" in table.stdout and "Ready for user" in table.stdout


async def test_retry_gives_a_failed_device_a_new_attempt_and_refuses_others(env, host, settings, graph):
    from dataclasses import replace

    from tests.integration.conftest import upload

    host.runtime.settings = replace(settings, max_attempts=1)
    upload(settings, "device-uploads", "standard/a.csv", csv_bytes([portal_row("CLI-1"), portal_row("CLI-2")]))
    host.poll_uploads()
    graph.ctl.configure(faults={"rate_500": 1.0})
    await host.drain_queue()
    graph.ctl.configure(faults={"rate_500": 0.0})
    result = cli(env, "retry", "CLI-1", "NOPE-9")
    assert result.returncode == 1
    assert "CLI-1: queued again" in result.stdout and "NOPE-9: not retried (no such device)" in result.stdout
    await host.drain_queue()
    store = host.runtime.store
    assert (store.get_device("CLI-1").state, store.get_device("CLI-2").state) == ("pending", "failed")
    everything = cli(env, "retry", "--all-failed")
    assert everything.returncode == 0 and "CLI-2: queued again" in everything.stdout
