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
    (device,) = json.loads(status.stdout)["devices"]
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


async def test_upload_refuses_what_ingest_would_refuse_before_sending(env, host, settings, tmp_path):
    good = tmp_path / "march.csv"
    good.write_bytes(csv_bytes([portal_row("CLI-1")]))
    text = tmp_path / "march.txt"
    text.write_bytes(good.read_bytes())
    odd = tmp_path / "märz.csv"
    odd.write_bytes(good.read_bytes())
    cases = [
        ((str(good), "--profile", "nosuch"), "profile 'nosuch' does not exist"),
        ((str(good), "--profile", "kiosk", "--partner", "contoso"), "may not register devices to profile 'kiosk'"),
        ((str(good), "--profile", "standard", "--partner", "fabrikam"), "unknown partner 'fabrikam'"),
        ((str(text), "--profile", "standard"), "only .csv files are processed"),
        ((str(odd), "--profile", "standard"), "plain ASCII"),
    ]
    for args, reason in cases:
        result = cli(env, "upload", *args)
        assert result.returncode == 2 and reason in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr
    from shared.storage import blob_service

    names = [
        b.name
        for c in ("device-uploads", "partner-contoso")
        for b in blob_service(settings).get_container_client(c).list_blobs()
    ]
    assert names == []  # nothing was sent


async def test_upload_wait_follows_the_upload_to_the_end_and_says_how_it_went(env, host, tmp_path):
    import asyncio

    path = tmp_path / "april.csv"
    path.write_bytes(csv_bytes([portal_row("CLI-1"), portal_row("CLI-2"), portal_row("CLI-3", hash_serial="CLI-X")]))
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "registrar",
        "upload",
        str(path),
        "--profile",
        "standard",
        "--wait",
        "--timeout",
        "120",
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    communicate = asyncio.create_task(process.communicate())
    while not communicate.done():
        await host.step()
        await asyncio.sleep(0.3)
    out, err = (b.decode() for b in communicate.result())
    assert process.returncode == 1, out + err  # one row was rejected
    assert "upload id " in out and "complete: 2 Ready for user" in out
    assert "line 4: CLI-3: rejected: hash.serial_mismatch" in out
    status = cli(env, "status", "--json", "--upload", out.split("upload id ")[1].split(";")[0])
    document = json.loads(status.stdout)
    assert sorted(d["serial"] for d in document["devices"]) == ["CLI-1", "CLI-2"]
    assert [r["code"] for r in document["rowsNotRegistered"]] == ["hash.serial_mismatch"]
    failed_only = cli(env, "status", "--json", "--state", "Registration failed")
    assert json.loads(failed_only.stdout)["devices"] == []
