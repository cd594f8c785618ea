"""Upload -> ingest -> queue -> register -> reconcile, on Azurite and the Graph emulator."""

import io
import json

import pytest

from functions import ingest, register
from registrar.synthetic import build_hash
from shared.states import DeviceState
from shared.storage import blob_service
from tests.helpers import csv_bytes, portal_row, queued_messages
from tests.integration.conftest import upload

pytestmark = [pytest.mark.anyio, pytest.mark.integration]


async def _settle(host, rounds: int = 10) -> None:
    for _ in range(rounds):
        await host.step()


def _report(settings, container, name):
    client = blob_service(settings).get_blob_client(container, f"_reports/{name}.result.json")
    return json.loads(client.download_blob().readall())


async def test_upload_to_registration_end_to_end(host, settings, graph):
    rows = [portal_row("PF-1"), portal_row("PF-2"), portal_row("PF-3", hash_serial="PF-9"), portal_row("PF-1")]
    upload(settings, "device-uploads", "standard/batch.csv", csv_bytes(rows))
    await _settle(host)
    store = host.runtime.store
    assert store.get_device("PF-1").state == DeviceState.READY
    assert store.get_device("PF-2").state == DeviceState.READY
    assert store.get_device("PF-3") is None
    report = _report(settings, "device-uploads", "standard/batch.csv")
    assert report["counts"] == {"accepted": 2, "duplicates": 1, "moved": 0, "rejected": 1}
    assert [r["code"] for r in report["rows"] if r["outcome"] == "rejected"] == ["hash.serial_mismatch"]
    state = graph.ctl.state()
    assert sorted(d["serial"] if "serial" in d else d["serialNumber"] for d in state["devices"]) == ["PF-1", "PF-2"]
    assert all(d["groupTag"] == "Standard" for d in state["devices"])
    assert state["imports"] == []  # processed import records are deleted
    counters = graph.ctl.counters()["requests"]
    assert counters.get("POST importedIdentities.import 200") == 1  # one import call for the batch


async def test_same_blob_twice_and_reupload_change_nothing(host, settings, graph):
    data = csv_bytes([portal_row("PF-1"), portal_row("PF-2")])
    upload(settings, "device-uploads", "standard/a.csv", data)
    await _settle(host, 3)
    blob = blob_service(settings).get_blob_client("device-uploads", "standard/a.csv")
    ingest.main(blob, host.runtime)  # the blob event delivered again
    upload(settings, "device-uploads", "standard/copy.csv", data)  # and the same devices in a new file
    await _settle(host, 3)
    assert graph.ctl.counters()["requests"].get("POST importedIdentities.import 200") == 1
    assert len(graph.ctl.state()["devices"]) == 2
    copy = _report(settings, "device-uploads", "standard/copy.csv")
    assert [r["code"] for r in copy["rows"]] == ["duplicate.known", "duplicate.known"]


async def test_806_and_808_get_their_messages(host, settings, graph):
    graph.ctl.seed(otherTenantSerials=["PF-THEIRS"], devices=[{"serial": "PF-OLD"}])
    upload(settings, "device-uploads", "standard/x.csv", csv_bytes([portal_row("PF-THEIRS"), portal_row("PF-OLD")]))
    await _settle(host)
    theirs = host.runtime.store.get_device("PF-THEIRS")
    assert (theirs.state, theirs.message) == (
        DeviceState.FAILED,
        "Device claimed by another organization: check with your device supplier",
    )
    old = host.runtime.store.get_device("PF-OLD")
    assert (old.state, old.message) == (DeviceState.READY, "Device already registered: no further action required")


async def test_partner_routing_and_profile_allow_list(host, settings):
    upload(settings, "partner-contoso", "kiosk/p.csv", csv_bytes([portal_row("PF-1")]))
    upload(
        settings,
        "partner-contoso",
        "standard/p.csv",
        csv_bytes([portal_row("PF-2"), portal_row("PF-3", group_tag="Kiosk")]),
    )
    upload(settings, "device-uploads", "nosuch/p.csv", csv_bytes([portal_row("PF-4")]))
    await _settle(host)
    refused = _report(settings, "partner-contoso", "kiosk/p.csv")
    assert refused["status"] == "rejected" and "may not register devices to profile 'kiosk'" in refused["reason"]
    accepted = _report(settings, "partner-contoso", "standard/p.csv")
    assert [(r["serial"], r["outcome"]) for r in accepted["rows"]] == [("PF-2", "accepted"), ("PF-3", "rejected")]
    assert accepted["rows"][1]["code"] == "group_tag.profile_mismatch"
    assert _report(settings, "device-uploads", "nosuch/p.csv")["rows"][0]["code"] == "upload.unknown_profile"
    assert host.runtime.store.get_device("PF-2").partner == "contoso"


async def test_message_delivered_three_times_imports_once(host, settings, graph):
    upload(settings, "device-uploads", "standard/a.csv", csv_bytes([portal_row("PF-1")]))
    host.poll_uploads()
    for count in (1, 2, 3):
        await register.main(queued_messages(host, count), host.runtime)
    assert graph.ctl.counters()["requests"]["POST importedIdentities.import 200"] == 1
    assert host.runtime.store.get_device("PF-1").state == DeviceState.PENDING


async def test_crash_between_graph_call_and_state_write_adopts_the_import(host, settings, graph):
    upload(settings, "device-uploads", "standard/a.csv", csv_bytes([portal_row("PF-1")]))
    host.poll_uploads()
    from shared import register as domain

    original = domain._mark_pending
    domain._mark_pending = lambda *a: (_ for _ in ()).throw(RuntimeError("host crashed"))
    try:
        with pytest.raises(RuntimeError):
            await register.main(queued_messages(host, 1), host.runtime)
    finally:
        domain._mark_pending = original
    assert host.runtime.store.get_device("PF-1").state == DeviceState.IMPORTING
    graph.ctl.configure(import_processing_seconds=30)  # keep the first import visible as "unknown"
    await register.main(queued_messages(host, 2), host.runtime)
    assert graph.ctl.counters()["requests"]["POST importedIdentities.import 200"] == 1
    device = host.runtime.store.get_device("PF-1")
    assert device.state == DeviceState.PENDING and device.import_id


async def test_report_neutralises_formulas(host, settings):
    rows = [["=cmd|' /C calc'!A0", "", build_hash("X1"), "", ""]]
    upload(settings, "device-uploads", "standard/evil.csv", csv_bytes(rows))
    host.poll_uploads()
    text = (
        blob_service(settings)
        .get_blob_client("device-uploads", "_reports/standard/evil.csv.result.csv")
        .download_blob()
        .readall()
        .decode("utf-8-sig")
    )
    assert "'=cmd" in text and "\n=cmd" not in text and ",=cmd" not in text


def test_function_app_exposes_triggers_with_bindings(env, monkeypatch):
    import importlib

    for key, value in env.items():
        monkeypatch.setenv(key, value)
    import function_app

    importlib.reload(function_app)
    bindings = {f.get_function_name(): {b.type: b for b in f.get_bindings()} for f in function_app.app.get_functions()}
    assert set(bindings) == {
        "ingest_device_uploads",
        "ingest_partner_contoso",
        "register",
        "reconcile",
        "status_devices",
        "status_upload",
        "status_partner_contoso_devices",
        "status_partner_contoso_upload",
        "portal",
    }
    portal = bindings["portal"]["httpTrigger"]  # behind App Service Authentication; the handler checks roles
    assert portal.route == "portal/{*path}" and str(portal.auth_level.value).lower() == "anonymous"
    http = bindings["status_partner_contoso_devices"]["httpTrigger"]
    assert http.route == "partners/contoso/devices" and str(http.auth_level.value).lower() == "function"
    blob = bindings["ingest_device_uploads"]["blobTrigger"]
    assert blob.path == "device-uploads/{name}" and blob.connection == "DataStorage"
    assert bindings["ingest_partner_contoso"]["blobTrigger"].path == "partner-contoso/{name}"
    bus = bindings["register"]["serviceBusTrigger"]
    assert (bus.queue_name, bus.connection, str(bus.cardinality.value)) == (
        "%REGISTRATION_QUEUE%",
        "ServiceBusConnection",
        "many",
    )
    assert bindings["reconcile"]["timerTrigger"].schedule == "%RECONCILE_SCHEDULE%"
    assert io


async def test_device_failed_while_graph_was_down_is_registered_by_an_admin_retry(host, settings, graph):
    from dataclasses import replace

    from shared.requeue import replay_failed

    host.runtime.settings = replace(settings, max_attempts=1)
    upload(settings, "device-uploads", "standard/a.csv", csv_bytes([portal_row("PF-1")]))
    host.poll_uploads()
    graph.ctl.configure(faults={"rate_500": 1.0})
    (outcome,) = await register.main(queued_messages(host), host.runtime)  # returns: the batch is completed
    assert outcome.result == "failed"
    device = host.runtime.store.get_device("PF-1")
    assert (device.state, device.error_code) == (DeviceState.FAILED, "graph_unavailable")
    assert "Microsoft Graph was unavailable for 1 attempts" in device.message and "retry" in device.message
    graph.ctl.configure(faults={"rate_500": 0.0})
    host.bus.clear()
    assert replay_failed(host.runtime.store, host.bus, settings.tenant_id, "PF-1") is not None
    (replayed,) = await register.main(queued_messages(host), host.runtime)
    assert replayed.result == "registered"
    assert host.runtime.store.get_device("PF-1").state == DeviceState.PENDING
    assert len(graph.ctl.state()["imports"]) == 1


async def test_a_known_device_uploaded_to_another_profile_is_reported_as_moved(host, settings, graph):
    upload(settings, "device-uploads", "standard/a.csv", csv_bytes([portal_row("PF-1")]))
    host.poll_uploads()
    upload(settings, "device-uploads", "kiosk/b.csv", csv_bytes([portal_row("PF-1")]))
    host.poll_uploads()
    report = _report(settings, "device-uploads", "kiosk/b.csv")
    (row,) = report["rows"]
    assert (row["outcome"], row["code"]) == ("moved", "device.profile_changed")
    assert row["message"].startswith("moved to profile kiosk (was standard)")
    assert report["counts"]["moved"] == 1 and report["counts"]["duplicates"] == 0
    assert host.runtime.store.get_device("PF-1").profile == "kiosk"
