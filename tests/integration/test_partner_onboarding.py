"""``partner add`` updates the configuration and yields a SAS that can write but not read or list;
``partner remove`` takes the partner out and keeps its container."""

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from azure.core.exceptions import HttpResponseError
from azure.storage.blob import ContainerClient

from functions import reconcile
from registrar.localhost.blob_trigger import blob_created_event
from registrar.localhost.host import LocalHost, LocalTimerRequest
from registrar.partner_cli import add_partner, local_sas_url, remove_partner
from shared.config import ConfigError, load_settings
from shared.storage import blob_service, queue_service
from tests.helpers import csv_bytes, portal_row
from tests.integration.conftest import upload

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


@pytest.mark.anyio
async def test_a_removed_partner_keeps_its_container_and_its_later_uploads_are_not_processed(
    host, settings, env, tmp_path
):
    config = tmp_path / "profiles.json"
    config.write_text(env["REGISTRAR_PROFILES"])
    name = f"standard/{uuid.uuid4().hex[:8]}.csv"
    upload(settings, "partner-contoso", name, csv_bytes([portal_row("RM-1")]))
    assert host.poll_uploads() == 1

    remove_partner(config, "contoso")
    # The app after the redeploy: the same data account, the document without the partner.
    after = LocalHost(load_settings({**env, "REGISTRAR_PROFILES": config.read_text()}), reconcile_interval=0)
    assert after.settings.containers == ["device-uploads"]
    container = blob_service(settings).get_container_client("partner-contoso")
    kept = {b.name for b in container.list_blobs()}
    assert {name, f"_reports/{name}.result.csv", f"_reports/{name}.result.json"} <= kept  # uploads and reports stay
    assert after.runtime.store.get_device("RM-1").partner == "contoso"  # and its devices' records

    # A late upload with a SAS not revoked yet, journaled by a subscription not deleted yet: never processed.
    late = f"standard/{uuid.uuid4().hex[:8]}.csv"
    upload(settings, "partner-contoso", late, csv_bytes([portal_row("RM-2")]))
    etag = container.get_blob_client(late).get_blob_properties().etag
    event = blob_created_event("partner-contoso", late, etag, 1, container.account_name)
    event["eventTime"] = (datetime.now(UTC) - timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    queue_service(settings).get_queue_client(settings.upload_events_queue).send_message(json.dumps(event))
    assert after.poll_uploads() == 0
    swept = (await reconcile.main(LocalTimerRequest(), after.runtime)).sweep
    # Both journaled events of the removed partner's container (the first upload's, not swept before the
    # removal, and the late one) are dropped from the journal, not ingested.
    assert (swept.events, swept.ingested, swept.ignored) == (2, [], 2)
    assert after.runtime.store.get_device("RM-2") is None
    assert f"_reports/{late}.result.json" not in {b.name for b in container.list_blobs()}
