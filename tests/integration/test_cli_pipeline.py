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
