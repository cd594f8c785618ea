"""``registrar dev`` as an admin uses it: it says where things are, it stops at once on Ctrl+C, and the
other commands know at once when it is not running (no hang, no traceback)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def cli_env(state_file: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AzureWebJobsStorage")}
    return {**env, "PYTHONPATH": str(ROOT), "REGISTRAR_STATE_FILE": str(state_file)}


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "registrar", *args], capture_output=True, text=True, cwd=ROOT, env=env, timeout=60
    )


def start_dev(env: dict[str, str], data: Path) -> tuple[subprocess.Popen, list[str]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "registrar", "dev", "--data", str(data), "--processing-seconds", "0.5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
        env=env,
    )
    banner = []
    for line in process.stdout:
        banner.append(line.rstrip())
        if line.startswith("upload with"):
            # Keep reading, as a terminal would: a full pipe would block dev's one-line-per-event output.
            threading.Thread(target=lambda: [None for _ in process.stdout], daemon=True).start()
            return process, banner
    raise AssertionError("dev did not start:\n" + "\n".join(banner))


def _outside_group(tenant: dict, serials: list[str]) -> set[str]:
    """The serials whose Entra device object is not a member of the standard profile's group."""
    from registrar.localhost.environment import DEFAULT_PROFILES

    group_id = json.loads(DEFAULT_PROFILES.read_text())["profiles"]["standard"]["groupId"]
    members = next((set(g["members"]) for g in tenant["groups"] if g["id"] == group_id), set())
    entra = {e["deviceId"]: e["id"] for e in tenant["entra"]}
    device_ids = {d["serialNumber"]: d.get("azureActiveDirectoryDeviceId") for d in tenant["devices"]}
    return {s for s in serials if entra.get(device_ids.get(s)) not in members}


def ctrl_c(process: subprocess.Popen, wait: float = 60) -> float:
    """Press Ctrl+C on ``dev``; the seconds it took to exit."""
    started = time.monotonic()
    process.send_signal(signal.SIGINT)
    process.wait(timeout=wait)
    return time.monotonic() - started


def test_commands_say_at_once_that_no_stack_runs_when_the_state_file_is_stale(tmp_path):
    state_file = tmp_path / "dev.json"
    state_file.write_text(
        json.dumps({"env": {"AzureWebJobsStorage": "BlobEndpoint=http://127.0.0.1:9/x;"}, "pid": 999_999})
    )
    env = cli_env(state_file)
    for args in (
        ["status"],
        ["retry", "--all-failed"],
        ["upload", str(ROOT / "samples/uploads/standard/batch-1.csv"), "--profile", "standard"],
    ):
        started = time.monotonic()
        result = run_cli(env, *args)
        assert time.monotonic() - started < 10, args
        assert result.returncode != 0 and "no local stack is running" in result.stderr + result.stdout, args
        assert "Traceback" not in result.stderr, args


def test_dev_prints_where_things_are_and_stops_within_two_seconds_of_ctrl_c(tmp_path):
    state_file = tmp_path / "dev.json"
    env = cli_env(state_file)
    process, banner = start_dev(env, tmp_path / "data")
    try:
        text = "\n".join(banner)
        assert "BlobEndpoint" in text and "Graph emulator" in text and str(tmp_path / "data") in text
        assert "JSON log" in text and (tmp_path / "data" / "registrar.log").exists()
        state = json.loads(state_file.read_text())
        assert state["pid"] == process.pid
        status = run_cli(env, "status", "--json")
        assert status.returncode == 0 and json.loads(status.stdout) == {"devices": [], "rowsNotRegistered": []}
    finally:
        stopped_in = ctrl_c(process)
    assert stopped_in < 2.0, f"Ctrl+C took {stopped_in:.1f} s"
    assert not state_file.exists()
    after = run_cli(env, "status")
    assert "no local stack is running" in after.stderr + after.stdout


def test_a_restarted_dev_keeps_graph_and_storage_and_goes_on_reconciling(tmp_path):
    from tests.helpers import csv_bytes, portal_row

    state_file = tmp_path / "dev.json"
    env = cli_env(state_file)
    upload_file = tmp_path / "three.csv"
    upload_file.write_bytes(csv_bytes([portal_row(f"RS-{n}") for n in range(3)]))

    def ready_devices() -> list[str]:
        devices = json.loads(run_cli(env, "status", "--json").stdout)["devices"]
        return sorted(d["serial"] for d in devices if d["state"] == "Ready for user")

    process, _ = start_dev(env, tmp_path / "data")
    try:
        assert run_cli(env, "upload", str(upload_file), "--profile", "standard").returncode == 0
        deadline = time.monotonic() + 60
        while ready_devices() != ["RS-0", "RS-1", "RS-2"]:
            assert time.monotonic() < deadline, "devices never became Ready"
            time.sleep(1)
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
    process, banner = start_dev(env, tmp_path / "data")
    try:
        assert any("tenant restored" in line for line in banner)
        graph_url = json.loads(state_file.read_text())["graphUrl"]
        import httpx

        tenant = httpx.get(graph_url + "/_emulator/state").json()
        assert sorted(d["serialNumber"] for d in tenant["devices"]) == ["RS-0", "RS-1", "RS-2"]
        time.sleep(8)  # a few reconcile rounds against the restored tenant
        assert ready_devices() == ["RS-0", "RS-1", "RS-2"]
        log = (tmp_path / "data" / "registrar.log").read_text()
        assert "local host trigger failed" not in log
        messages = [d["message"] for d in json.loads(run_cli(env, "status", "--json").stdout)["devices"]]
        assert not [m for m in messages if m.startswith("Not found in Autopilot")]
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)


@pytest.mark.timeout(400)
def test_ctrl_c_during_a_1000_device_upload_stops_at_once_and_a_second_dev_registers_each_device_once(tmp_path):
    """Correctness at scale. Work in flight when dev stops is redelivered by the next dev (queue messages live
    in Azurite's data, the emulated tenant is persisted): nothing lost, nothing imported twice, and every one
    of the 1,000 devices ends in its profile's group."""
    from tests.helpers import csv_bytes, portal_row

    state_file = tmp_path / "dev.json"
    env = cli_env(state_file)
    serials = [f"CC-{n:04d}" for n in range(1000)]
    upload_file = tmp_path / "thousand.csv"
    upload_file.write_bytes(csv_bytes([portal_row(s) for s in serials]))

    def states() -> dict[str, str]:
        result = run_cli(env, "status", "--json")
        assert result.returncode == 0, result.stderr
        return {d["serial"]: d["state"] for d in json.loads(result.stdout)["devices"]}

    process, _ = start_dev(env, tmp_path / "data")
    try:
        assert run_cli(env, "upload", str(upload_file), "--profile", "standard").returncode == 0
        deadline = time.monotonic() + 90
        while True:  # stop while the work is under way: some devices past the queue, not all of them
            seen = states()
            moving = [s for s, state in seen.items() if state != "Queued"]
            if len(seen) == 1000 and moving and len(moving) < 1000:
                break
            if len(moving) == 1000:
                pytest.fail("the upload finished before dev could be interrupted")
            assert time.monotonic() < deadline, f"the upload never got under way: {len(seen)} devices"
            time.sleep(0.2)
    finally:
        stopped_in = ctrl_c(process)
    assert stopped_in < 2.0, f"Ctrl+C during the upload took {stopped_in:.1f} s"

    process, _ = start_dev(env, tmp_path / "data")
    try:
        deadline = time.monotonic() + 150
        while True:
            seen = states()
            if sorted(seen) == serials and set(seen.values()) <= {"Ready for user"}:
                break
            failed = {s: state for s, state in seen.items() if state == "Registration failed"}
            assert not failed, failed
            assert time.monotonic() < deadline, sorted(set(seen.values()))
            time.sleep(1)
        graph_url = json.loads(state_file.read_text())["graphUrl"]
        import httpx

        imported = httpx.get(graph_url + "/_emulator/state").json()["importedSerials"]
        assert imported == dict.fromkeys(serials, 1)  # every device imported exactly once
        # ...and every device ends in its profile's group: the whole job, not only the import.
        deadline = time.monotonic() + 120
        while (outside := _outside_group(httpx.get(graph_url + "/_emulator/state").json(), serials)) and (
            time.monotonic() < deadline
        ):
            time.sleep(2)
        assert not outside, f"{len(outside)} devices not in their group, e.g. {sorted(outside)[:5]}"
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
