"""Soak: faults, throttling, a killed local host and a restarted Azurite, and still exactly one Autopilot
record per accepted device, every accepted row final, every rejected row with a reason.

CI runs a small N; run a larger one by hand: SOAK_DEVICES=1000 .venv/bin/python -m pytest tests/soak -s
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from registrar.emulators.graph import EmulatorConfig, EmulatorServer
from registrar.localhost.azurite import Azurite
from registrar.localhost.environment import DEFAULT_PROFILES, local_env
from registrar.synthetic import PORTAL_HEADER, build_hash
from shared.config import load_settings
from shared.state import StateStore
from shared.states import FINAL_FOR_DEMO, DeviceState
from shared.storage import blob_service, table_service

ROOT = Path(__file__).resolve().parents[2]
DEVICES = int(os.environ.get("SOAK_DEVICES", "60"))
pytestmark = [pytest.mark.soak, pytest.mark.integration]


def _start_host(connection: str, graph_url: str, log: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "registrar",
            "dev",
            "--storage",
            connection,
            "--graph",
            graph_url,
            "--profiles",
            str(DEFAULT_PROFILES),
            "--reconcile-seconds",
            "1",
            "--state-file",
            "-",
        ],
        cwd=ROOT,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def _csv(serials: list[str], bad: list[str] = ()) -> bytes:
    lines = [",".join(PORTAL_HEADER)] + [f"{s},,{build_hash(s)},," for s in serials]
    lines += [f"{s},,{build_hash(s + '-other')},," for s in bad]  # hash of another device: rejected
    return ("\r\n".join(lines) + "\r\n").encode()


def test_soak_with_faults_and_restarts(tmp_path):
    config = EmulatorConfig(import_processing_seconds=1, entra_delay_seconds=1, page_size=50)
    # 5% 5xx. Seed 57's sequence faults the 1st and 3rd Graph requests, so even a small N meets faults
    # (the client batches: a 60-device run makes only a few dozen Graph calls).
    config.faults.rate_500, config.faults.rate_503, config.faults.latency_ms, config.faults.seed = 0.03, 0.02, 20, 57
    config.faults.rate_429 = 0.02  # 429s below every limit, as a loaded Graph answers
    config.throttle.app_writes, config.throttle.tenant_writes, config.throttle.window_seconds = 10, 20, 2
    config.throttle.entra_app_writes, config.throttle.entra_window_seconds = 10, 2
    restarts = {"host": 0, "azurite": 0}
    storage = Azurite(tmp_path / "azurite").start()
    host = None
    try:
        with EmulatorServer(config) as graph:
            control = graph.control()
            settings = load_settings(local_env(storage.connection_string, graph.url, DEFAULT_PROFILES))
            control.seed(groups=[{"id": p.group_id, "displayName": n} for n, p in settings.profiles.profiles.items()])
            host_log = tmp_path / "host.log"
            host = _start_host(storage.connection_string, graph.url, host_log)
            serials = [f"SK{n:05d}" for n in range(DEVICES)]
            bad = [f"BAD{n}" for n in range(3)]
            blobs = blob_service(settings)
            for container in ("device-uploads",):
                try:
                    blobs.create_container(container)
                except Exception:  # noqa: BLE001,S110 - the host may have created it already
                    pass
            third = len(serials) // 3
            for index, chunk in enumerate([serials[:third], serials[third : 2 * third], serials[2 * third :]]):
                blobs.get_blob_client("device-uploads", f"standard/soak-{index}.csv").upload_blob(
                    _csv(chunk, bad if index == 0 else [])
                )
            time.sleep(4)
            host.send_signal(signal.SIGKILL)  # a crash, not a clean stop
            host.wait(timeout=10)
            restarts["host"] += 1
            host = _start_host(storage.connection_string, graph.url, host_log)
            time.sleep(4)
            storage.restart()  # same ports, same data directory
            restarts["azurite"] += 1
            store = StateStore(table_service(settings), settings.table_prefix)
            deadline = time.monotonic() + 240
            while time.monotonic() < deadline:
                try:
                    devices = {d.serial: d for d in store.all_devices()}
                except Exception:  # noqa: BLE001 - storage may be coming back
                    devices = {}
                if len(devices) == DEVICES and all(DeviceState(d.state) in FINAL_FOR_DEMO for d in devices.values()):
                    break
                time.sleep(1)
            tenant = control.state()
            counters = control.counters()
            rows = [r for upload in store.all_uploads() for r in store.rows_of(upload.upload_id)]
            control.close()
    finally:
        if host and host.poll() is None:
            host.terminate()
            host.wait(timeout=10)
        storage.close()
    not_final = {s: d.state for s, d in devices.items() if DeviceState(d.state) not in FINAL_FOR_DEMO}
    (ROOT / "build").mkdir(exist_ok=True)
    (ROOT / "build" / "soak-host.log").write_text(host_log.read_text())
    assert not not_final and len(devices) == DEVICES, (not_final, host_log.read_text()[-3000:])
    registered = sorted(d["serialNumber"] for d in tenant["devices"])
    assert registered == serials  # exactly one Autopilot record per accepted device: none lost, none doubled
    assert all(devices[s].state == DeviceState.READY for s in serials)
    rejected = [r for r in rows if r.outcome == "rejected"]
    assert sorted(r.serial for r in rejected) == sorted(bad) and all(r.message for r in rejected)
    figures = {
        "devices": DEVICES,
        "faults_injected": counters["faults"],
        "throttled": counters["throttled"],
        "restarts_survived": restarts,
    }
    (ROOT / "bench" / "results").mkdir(exist_ok=True)
    (ROOT / "bench" / "results" / f"soak-{DEVICES}.json").write_text(json.dumps(figures, indent=1))
    print(json.dumps(figures))
    assert sum(counters["faults"].values()) > 0 and restarts == {"host": 1, "azurite": 1}
