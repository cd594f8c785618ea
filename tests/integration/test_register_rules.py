"""Register is correct under Service Bus batch rules: a per-device outcome never fails its batch, a retry is
a scheduled copy with a new MessageId, a maybe-applied import is looked up, not repeated, every batch ends
inside its time budget, and a failed device registers again within the duplicate-detection window."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import pytest

from functions import register
from shared.requeue import message_for, replay_failed
from shared.states import DeviceState
from tests.helpers import csv_bytes, portal_row, queued_messages
from tests.integration.conftest import upload

pytestmark = [pytest.mark.anyio, pytest.mark.integration]


def as_trigger_message(record, tenant: str):
    """The scheduled copy of a device's current attempt, as the trigger would hand it over once due."""
    from datetime import UTC, datetime

    from azure.functions.servicebus import ServiceBusMessage

    message = message_for(record, tenant)
    return ServiceBusMessage(
        body=message.to_json().encode(),
        message_id=message.message_id,
        delivery_count=1,
        enqueued_time_utc=datetime.now(UTC),
        application_properties={},
        user_properties={},
        trigger_metadata={},
    )


async def test_a_malformed_message_is_recorded_and_the_rest_of_its_batch_registers(host, settings, graph):
    upload(settings, "device-uploads", "standard/a.csv", csv_bytes([portal_row("RR-1"), portal_row("RR-2")]))
    host.poll_uploads()
    host.bus.send_raw("this is not a registration message", "bad-1")
    await host.drain_queue()
    assert host.counters.failed_batches == 0  # the batch was completed, not abandoned
    assert host.bus.counters.completed == 3 and host.bus.approximate_count() == 0
    store = host.runtime.store
    assert [store.get_device(s).state for s in ("RR-1", "RR-2")] == [DeviceState.PENDING] * 2
    (bad,) = store.bad_messages()
    assert bad["RowKey"] == "bad-1" and "malformed registration message" in bad["reason"]


async def test_a_throttled_import_completes_the_batch_and_sends_each_device_a_scheduled_new_attempt(
    host, settings, graph
):
    graph.ctl.configure(throttle={"enabled": True, "app_writes": 1, "window_seconds": 60})
    upload(settings, "device-uploads", "standard/a.csv", csv_bytes([portal_row("RR-0")]))
    host.poll_uploads()
    await host.drain_queue()  # takes the only write of the window
    upload(settings, "device-uploads", "standard/b.csv", csv_bytes([portal_row("RR-1"), portal_row("RR-2")]))
    host.poll_uploads()
    first_ids = {e["messageId"] for e in host.bus.peek()}
    await host.drain_queue()
    assert host.counters.failed_batches == 0 and host.bus.counters.abandoned == 0
    for serial in ("RR-1", "RR-2"):
        device = host.runtime.store.get_device(serial)
        assert device.state == DeviceState.QUEUED and device.generation == 1
        assert (
            device.message.startswith("Graph asked us to wait (Graph answered 429") and "next try at" in device.message
        )
        assert device.next_attempt and device.attempts == 0  # a 429 is a wait, not a failed attempt
    assert host.bus.peek() == []  # the copies are scheduled (invisible until Retry-After)...
    assert host.bus.approximate_count() == 2  # ...but on the queue
    copies = {message_for(host.runtime.store.get_device(s), settings.tenant_id).message_id for s in ("RR-1", "RR-2")}
    assert not copies & first_ids  # new MessageIds: duplicate detection cannot drop them


async def test_an_import_whose_answer_was_lost_is_looked_up_and_never_imported_twice(host, settings, graph):
    upload(settings, "device-uploads", "standard/a.csv", csv_bytes([portal_row("RR-1")]))
    host.poll_uploads()
    graph.ctl.configure(faults={"drop_rate": 1.0})  # Graph applies the import, the connection dies
    (outcome,) = await register.main(queued_messages(host), host.runtime)
    assert outcome.result == "rescheduled"
    device = host.runtime.store.get_device("RR-1")
    assert device.state == DeviceState.IMPORTING and "Graph did not confirm the import" in device.message
    assert device.attempts == 1
    graph.ctl.configure(faults={"drop_rate": 0.0}, import_processing_seconds=30)
    (again,) = await register.main([as_trigger_message(device, settings.tenant_id)], host.runtime)
    assert again.result == "adopted"
    assert graph.ctl.state()["importedSerials"] == {"RR-1": 1}
    assert host.runtime.store.get_device("RR-1").state == DeviceState.PENDING


async def test_a_batch_ends_inside_its_time_budget_whatever_graph_does(host, settings, graph):
    host.runtime.settings = replace(settings, lock_duration_seconds=4.0)  # time budget: half of it
    upload(settings, "device-uploads", "standard/a.csv", csv_bytes([portal_row("RR-1"), portal_row("RR-2")]))
    host.poll_uploads()
    graph.ctl.configure(faults={"latency_ms": 6000})
    started = time.monotonic()
    outcomes = await register.main(queued_messages(host), host.runtime)
    assert time.monotonic() - started < 3.5
    assert {o.result for o in outcomes} == {"rescheduled"}
    assert "Graph did not confirm the import" in host.runtime.store.get_device("RR-1").message


async def test_a_device_that_failed_registers_from_a_reupload_within_the_duplicate_window(host, settings, graph):
    host.runtime.settings = replace(settings, max_attempts=1)
    data = csv_bytes([portal_row("RR-1")])
    upload(settings, "device-uploads", "standard/a.csv", data)
    host.poll_uploads()
    graph.ctl.configure(faults={"rate_500": 1.0})
    await host.drain_queue()
    assert host.runtime.store.get_device("RR-1").state == DeviceState.FAILED
    graph.ctl.configure(faults={"rate_500": 0.0})
    upload(settings, "device-uploads", "standard/again.csv", data)  # minutes later, well inside the 1 h window
    host.poll_uploads()
    await host.drain_queue()
    assert host.bus.counters.duplicates_dropped == 0
    assert host.runtime.store.get_device("RR-1").state == DeviceState.PENDING
    assert graph.ctl.state()["importedSerials"] == {"RR-1": 1}


async def test_an_admin_retry_within_the_window_registers_and_a_true_duplicate_send_is_dropped(host, settings, graph):
    host.runtime.settings = replace(settings, max_attempts=1)
    upload(settings, "device-uploads", "standard/a.csv", csv_bytes([portal_row("RR-1")]))
    host.poll_uploads()
    device = host.runtime.store.get_device("RR-1")
    host.bus.send([message_for(device, settings.tenant_id)])  # the same attempt sent again: dropped
    assert host.bus.counters.duplicates_dropped == 1 and host.bus.approximate_count() == 1
    graph.ctl.configure(faults={"rate_500": 1.0})
    await host.drain_queue()
    graph.ctl.configure(faults={"rate_500": 0.0})
    assert replay_failed(host.runtime.store, host.bus, settings.tenant_id, "RR-1") is not None
    await host.drain_queue()
    assert host.runtime.store.get_device("RR-1").state == DeviceState.PENDING


async def test_the_timer_redrives_a_device_whose_message_was_lost(host, settings, graph):
    host.runtime.settings = replace(settings, duplicate_window_seconds=2.0)
    upload(settings, "device-uploads", "standard/a.csv", csv_bytes([portal_row("RR-1")]))
    host.poll_uploads()
    host.bus.clear()  # the message is gone (purged by hand, or never sent)
    await host.run_timer(force=True)
    assert host.runtime.store.get_device("RR-1").state == DeviceState.QUEUED  # not yet: still inside the window
    await asyncio.sleep(3.2)  # times are kept to the second
    await host.run_timer(force=True)
    device = host.runtime.store.get_device("RR-1")
    assert device.generation == 1 and "did not arrive in time" in device.message
    await host.drain_queue()
    assert host.runtime.store.get_device("RR-1").state == DeviceState.PENDING


async def test_a_device_failed_by_register_reaches_its_upload_report(host, settings, graph):
    import json as _json

    from shared.storage import blob_service

    host.runtime.settings = replace(settings, max_attempts=1)
    upload(settings, "device-uploads", "standard/a.csv", csv_bytes([portal_row("RR-1")]))
    host.poll_uploads()
    graph.ctl.configure(faults={"rate_500": 1.0})
    await host.drain_queue()
    graph.ctl.configure(faults={"rate_500": 0.0})
    await host.run_timer(force=True)
    report = blob_service(settings).get_blob_client("device-uploads", "_reports/standard/a.csv.result.json")
    (row,) = _json.loads(report.download_blob().readall())["rows"]
    assert (row["outcome"], row["state"]) == ("accepted", "Registration failed")
    assert "Microsoft Graph was unavailable" in row["stateMessage"]


async def test_a_same_name_reupload_keeps_the_first_uploads_report(host, settings, graph):
    import json as _json

    from shared.storage import blob_service

    upload(settings, "device-uploads", "standard/a.csv", csv_bytes([portal_row("RR-1")]))
    host.poll_uploads()
    upload(settings, "device-uploads", "standard/a.csv", csv_bytes([portal_row("RR-2"), portal_row("RR-3")]))
    host.poll_uploads()
    container = blob_service(settings).get_container_client("device-uploads")
    reports = sorted(b.name for b in container.list_blobs(name_starts_with="_reports/standard/a.csv."))
    own = [n for n in reports if n.endswith(".result.json") and n != "_reports/standard/a.csv.result.json"]
    assert len(own) == 2  # one per upload, by upload id
    serials = [[r["serial"] for r in _json.loads(container.download_blob(n).readall())["rows"]] for n in own]
    assert sorted(serials) == [["RR-1"], ["RR-2", "RR-3"]]
    latest = _json.loads(container.download_blob("_reports/standard/a.csv.result.json").readall())
    assert [r["serial"] for r in latest["rows"]] == ["RR-2", "RR-3"]
    assert latest["report"].removesuffix(".csv") + ".json" in own  # it names its own, kept report


async def test_the_import_calls_request_id_and_time_are_kept_for_support(host, settings, graph):
    import uuid

    from shared.errors import describe_import_error

    upload(settings, "device-uploads", "standard/a.csv", csv_bytes([portal_row("RR-1")]))
    host.poll_uploads()
    await host.drain_queue()
    device = host.runtime.store.get_device("RR-1")
    uuid.UUID(device.import_request_id)  # Graph's request-id header of the import call
    assert device.import_requested_at.endswith("Z")
    code, message = describe_import_error(0, "SomethingNew", device.import_request_id, device.import_requested_at[:-1])
    assert code == "SomethingNew"
    assert message == (
        f"Unexpected error: contact support with request ID {device.import_request_id} "
        f"(call at {device.import_requested_at[:-1]} UTC)"
    )
    assert device.import_id not in message  # the import record's id is not what support can trace


async def test_two_copies_of_a_device_in_one_batch_import_it_once(host, settings, graph):
    """After a crash a redelivered message and its re-driven copy can meet in one batch: one import item,
    never a ZtdDeviceDuplicated "Registration failed" for a device that was registered."""
    upload(settings, "device-uploads", "standard/a.csv", csv_bytes([portal_row("TW-1"), portal_row("TW-2")]))
    host.poll_uploads()
    messages = queued_messages(host)
    outcomes = await register.main(messages + queued_messages(host, delivery_count=2), host.runtime)
    assert sorted(o.result for o in outcomes) == ["registered", "registered", "skipped", "skipped"]
    assert graph.ctl.state()["importedSerials"] == {"TW-1": 1, "TW-2": 1}
    graph.ctl.advance(60)
    await host.step()
    assert {host.runtime.store.get_device(s).state for s in ("TW-1", "TW-2")} == {DeviceState.READY}


async def test_a_device_the_timer_finished_during_its_import_call_is_not_set_back_to_pending(
    host, settings, graph, monkeypatch
):
    """Another instance's timer can see the import (by serial) and move the device to Ready, and delete
    the import record, before register saves "Pending": register must not set it back, or the device
    would wait forever for a record that no longer exists."""
    from functions import reconcile
    from registrar.localhost.host import LocalTimerRequest

    upload(settings, "device-uploads", "standard/a.csv", csv_bytes([portal_row("RC-1")]))
    host.poll_uploads()
    real_import = host.runtime.graph.import_devices

    async def import_then_timer(messages):
        result = await real_import(messages)
        await reconcile.main(LocalTimerRequest(), host.runtime)  # the timer, between the POST and the save
        return result

    monkeypatch.setattr(host.runtime.graph, "import_devices", import_then_timer)
    await register.main(queued_messages(host), host.runtime)
    device = host.runtime.store.get_device("RC-1")
    assert device.state == DeviceState.READY, device.message
    assert graph.ctl.state()["importedSerials"] == {"RC-1": 1}
    assert device.import_id and device.import_request_id  # what support asks for is kept all the same


async def test_serials_with_characters_a_table_key_refuses_register_like_any_other(host, settings, graph):
    """Row keys escape / # ? % and friends; the batch read and the bulk saves must find these devices."""
    serials = ["SN/1 #2", "A%41?x", "O'Brien-7"]
    upload(settings, "device-uploads", "standard/odd.csv", csv_bytes([portal_row(s) for s in serials]))
    for _ in range(4):
        await host.step()
        graph.ctl.advance(60)
    assert {s: host.runtime.store.get_device(s).state for s in serials} == dict.fromkeys(serials, DeviceState.READY)
    assert graph.ctl.state()["importedSerials"] == dict.fromkeys(serials, 1)
