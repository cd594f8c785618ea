"""host.json's functionTimeout: Azure stops an invocation that runs longer and counts it as failed; the
local host fails it too (when it ends), so its trigger retries and finally poisons it, as Azure's would."""

from __future__ import annotations

import json

import pytest

from registrar.localhost.blob_trigger import MAX_DEQUEUE_COUNT
from registrar.localhost.host import LocalHost
from registrar.localhost.host_json import HOST_JSON, function_timeout_seconds
from tests.helpers import csv_bytes, portal_row
from tests.integration.conftest import upload

pytestmark = pytest.mark.integration


def test_the_local_host_takes_the_timeout_from_host_json(settings, tmp_path):
    hours, minutes, seconds = (int(p) for p in json.loads(HOST_JSON.read_text())["functionTimeout"].split(":"))
    assert LocalHost(settings).function_timeout == hours * 3600 + minutes * 60 + seconds
    bare = tmp_path / "host.json"
    bare.write_text(json.dumps({"version": "2.0"}))
    assert function_timeout_seconds(bare) == 30 * 60  # Flex Consumption's default


def test_an_ingest_that_runs_past_the_timeout_fails_and_is_poisoned_after_its_tries(host, settings, graph):
    local = LocalHost(settings, reconcile_interval=0, function_timeout=1e-6)  # every run is too long
    upload(settings, "device-uploads", "standard/slow.csv", csv_bytes([portal_row("TO-1")]))
    local.upload_events.publish_new(local.blob_trigger)
    run = local.blob_trigger.run_once()
    assert run.poisoned == ["device-uploads/standard/slow.csv"] and not run.succeeded  # (host: empty containers)
    timed_out = [e for e in local.counters.errors if "functionTimeout" in e]
    assert len(timed_out) == MAX_DEQUEUE_COUNT and timed_out[0].startswith("ingest ran")
