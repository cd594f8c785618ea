"""``python -m registrar graph-emulator`` starts a server that the SDK can use."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from shared.graph.client import graph_client
from shared.graph.credentials import AsyncDevelopmentCredential
from tests.emulator.sdk import identity

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.anyio


async def test_cli_serves_graph_and_reset_clears_state():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "registrar", "graph-emulator", "--port", "0", "--processing-seconds", "0"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    try:
        line = process.stdout.readline()
        assert line.startswith("Graph emulator on http://127.0.0.1:"), line
        url = line.split()[3]
        client = graph_client(AsyncDevelopmentCredential(), url + "/v1.0")
        created = await client.device_management.imported_windows_autopilot_device_identities.post(identity("PF-1"))
        assert created.serial_number == "PF-1"
        import httpx

        assert httpx.post(url + "/_emulator/reset").status_code == 200
        assert (await client.device_management.imported_windows_autopilot_device_identities.get()).value == []
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_the_emulator_answers_without_nagle_delay():
    """Connections inherit TCP_NODELAY from the listening socket; without it each small reply waited for
    the client's delayed ACK (about 40 ms a call), which made every local timing meaningless."""
    import socket

    from registrar.emulators.graph import EmulatorConfig, EmulatorServer

    server = EmulatorServer(EmulatorConfig())
    try:
        assert server._socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
    finally:
        server._socket.close()
