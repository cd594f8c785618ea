"""``partner add`` updates the configuration and yields a SAS that can write but not read or list."""

import json

import pytest
from azure.core.exceptions import HttpResponseError
from azure.storage.blob import ContainerClient

from registrar.partner_cli import add_partner, local_sas_url
from shared.config import ConfigError

pytestmark = pytest.mark.integration


def test_add_partner_validates_and_writes_configuration(tmp_path):
    config = tmp_path / "profiles.json"
    config.write_text(
        json.dumps({"profiles": {"standard": {"groupTag": "S", "groupId": "11111111-1111-4111-8111-111111111111"}}})
    )
    document = add_partner(config, "fabrikam", ["standard"])
    assert document.partners["fabrikam"].profiles == ["standard"]
    assert json.loads(config.read_text())["partners"]["fabrikam"] == {"profiles": ["standard"]}
    with pytest.raises(ConfigError, match="unknown profile"):
        add_partner(config, "fabrikam", ["kiosk"])
    with pytest.raises(ConfigError):
        add_partner(config, "Bad_Id", ["standard"])
    assert "kiosk" not in config.read_text()  # a refused change leaves the file as it was


def test_local_sas_can_upload_but_not_read_or_list(azurite):
    url = local_sas_url(azurite.connection_string, "partner-fabrikam", hours=1)
    container = ContainerClient.from_container_url(url)
    container.upload_blob("standard/devices.csv", b"Device Serial Number\r\n")
    with pytest.raises(HttpResponseError) as listing:
        list(container.list_blobs())
    assert listing.value.status_code == 403
    with pytest.raises(HttpResponseError) as reading:
        container.download_blob("standard/devices.csv").readall()
    assert reading.value.status_code == 403


def test_partner_add_refuses_an_empty_profile_list_and_leaves_the_file_alone(tmp_path):
    config = tmp_path / "profiles.json"
    original = json.dumps(
        {"profiles": {"standard": {"groupTag": "S", "groupId": "11111111-1111-4111-8111-111111111111"}}}
    )
    config.write_text(original)
    with pytest.raises(ConfigError, match="at least one profile"):
        add_partner(config, "fabrikam", [])
    assert config.read_text() == original


def test_partner_add_without_a_running_stack_never_hangs_and_never_touches_the_samples(tmp_path):
    import os
    import subprocess
    import sys
    import time
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    samples = (root / "samples" / "profiles.json").read_text()
    config = tmp_path / "profiles.json"
    config.write_text(samples)
    env = {**os.environ, "PYTHONPATH": str(root), "REGISTRAR_STATE_FILE": str(tmp_path / "none.json")}
    started = time.monotonic()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "registrar",
            "partner",
            "add",
            "fabrikam",
            "--profiles",
            "standard",
            "--config",
            str(config),
        ],
        capture_output=True,
        text=True,
        cwd=root,
        env=env,
        timeout=60,
    )
    assert time.monotonic() - started < 15
    assert result.returncode == 0 and "Traceback" not in result.stderr
    assert "No local stack is running" in result.stdout
    assert "fabrikam" in json.loads(config.read_text())["partners"]
    assert (root / "samples" / "profiles.json").read_text() == samples
