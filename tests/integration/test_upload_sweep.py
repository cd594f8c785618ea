"""No upload is lost (issue #12): the reconcile timer's sweep (shared/sweep.py) ingests every upload whose
blob-trigger event never ran, exactly once, on real Azurite and the Graph emulator.

The local host journals every upload event as the Event Grid storage-queue subscription does
(``registrar/localhost/blob_trigger.UploadEvents``) and drops a trigger message for a function it has not
indexed, as the blob extension does (``FunctionNotFound``). Dead-lettered events are blobs in the
dead-letter container in Event Grid's own format: a JSON array of events with the dead-letter properties.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

import functions.ingest
from functions import reconcile
from registrar.localhost.blob_trigger import blob_created_event, function_id
from registrar.localhost.host import LocalHost, LocalTimerRequest
from shared.ingest import upload_id_for
from shared.states import DeviceState
from shared.storage import blob_service, queue_service
from tests.helpers import csv_bytes, portal_row
from tests.integration.conftest import upload

pytestmark = [pytest.mark.anyio, pytest.mark.integration]


@pytest.fixture
def sweeper(host, settings):
    """The local host with no grace period: the sweep does not wait for a trigger that may still be on an
    upload (in Azure it waits ``sweep_grace_seconds``, 2 minutes; ``test_the_sweep_leaves_a_fresh_upload``
    covers the wait)."""
    return LocalHost(replace(settings, sweep_grace_seconds=0), reconcile_interval=0)


@pytest.fixture
def ingest_calls(monkeypatch):
    """Every run of the ingest function, by the blob trigger or by the sweep: "container/blob"."""
    calls: list[str] = []
    real = functions.ingest.main

    def counted(client, rt=None):
        calls.append(f"{client.container_name}/{client.blob_name}")
        return real(client, rt)

    monkeypatch.setattr(functions.ingest, "main", counted)
    return calls


async def reconcile_run(host):
    """One run of the reconcile timer, as the Functions host fires it; its sweep's summary."""
    return (await reconcile.main(LocalTimerRequest(), host.runtime)).sweep


def queued_serials(host) -> list[str]:
    return sorted(json.loads(envelope["body"])["serial"] for envelope in host.bus.peek())


def journal_messages(settings) -> list[dict]:
    journal = queue_service(settings).get_queue_client(settings.upload_events_queue)
    return [json.loads(m.content) for m in journal.peek_messages(max_messages=32)]


def journal_count(settings) -> int:
    """Messages in the journal, hidden ones included (a taken message is hidden until deleted or it expires)."""
    journal = queue_service(settings).get_queue_client(settings.upload_events_queue)
    return journal.get_queue_properties().approximate_message_count


def etag_of(settings, container: str, name: str) -> str:
    return blob_service(settings).get_blob_client(container, name).get_blob_properties().etag


def report(settings, container: str, name: str) -> dict:
    client = blob_service(settings).get_blob_client(container, f"_reports/{name}.result.json")
    return json.loads(client.download_blob().readall())


def dead_letter(settings, subscription: str, events: list[dict]) -> str:
    """A dead-letter blob as Event Grid writes it: ``<SUBSCRIPTION NAME IN UPPER CASE>/<yyyy>/<m>/<d>/<h>/
    <guid>.json`` (UTC, not zero-padded), holding a JSON array of the undelivered events, each with the
    dead-letter properties added."""
    now = datetime.now(UTC)
    name = f"{subscription.upper()}/{now.year}/{now.month}/{now.day}/{now.hour}/{uuid.uuid4()}.json"
    for event in events:
        event.update(
            deadLetterReason="MaxDeliveryAttemptsExceeded",
            deliveryAttempts=30,
            lastDeliveryOutcome="Probation",
            lastHttpStatusCode=0,
            publishTime=event["eventTime"],
            lastDeliveryAttemptTime=now.isoformat().replace("+00:00", "Z"),
        )
    container = blob_service(settings).get_container_client(settings.upload_deadletter_container)
    container.upload_blob(name, json.dumps(events).encode("utf-8"))
    return name


async def settle(host, rounds: int = 8) -> None:
    """Register and reconcile until the queue is empty and Graph has answered (no new upload events)."""
    for _ in range(rounds):
        while await host.drain_queue():
            pass
        await host.run_timer(force=True)


async def test_an_upload_whose_event_the_host_dropped_is_ingested_by_the_next_sweep_exactly_once(
    sweeper, settings, graph, ingest_calls
):
    host = sweeper
    # A new partner's function is not indexed yet by the running host: its event is dropped.
    del host.blob_trigger.functions[function_id("ingest_partner_contoso")]
    name = "standard/new-partner.csv"
    upload(settings, "partner-contoso", name, csv_bytes([portal_row("SW-A1"), portal_row("SW-A2")]))
    host.upload_events.publish_new(host.blob_trigger)  # both subscriptions: webhook and journal
    run = host.blob_trigger.run_once()
    assert run.function_not_found == [f"partner-contoso/{name}"] and not run.succeeded
    upload_id = upload_id_for("partner-contoso", name, etag_of(settings, "partner-contoso", name))
    assert host.runtime.store.get_upload(upload_id) is None and queued_serials(host) == [] and ingest_calls == []

    first = await reconcile_run(host)
    assert first.ingested == [f"partner-contoso/{name}"] and ingest_calls == [f"partner-contoso/{name}"]
    record = host.runtime.store.get_upload(upload_id)
    assert (record.status, record.partner, record.profile, record.accepted) == ("complete", "contoso", "standard", 2)
    assert queued_serials(host) == ["SW-A1", "SW-A2"]  # one registration message per device
    assert report(settings, "partner-contoso", name)["counts"]["accepted"] == 2
    assert host.runtime.store.get_device("SW-A1").state == DeviceState.QUEUED

    second = await reconcile_run(host)
    assert (second.events, second.ingested, second.already) == (0, [], 0)
    assert journal_count(settings) == 0  # the journal was drained: the event was deleted
    assert ingest_calls == [f"partner-contoso/{name}"] and queued_serials(host) == ["SW-A1", "SW-A2"]
    assert [u.upload_id for u in host.runtime.store.all_uploads()] == [upload_id]

    await settle(host)
    assert {host.runtime.store.get_device(s).state for s in ("SW-A1", "SW-A2")} == {DeviceState.READY}
    assert graph.ctl.counters()["requests"].get("POST importedIdentities.import 200") == 1
    assert ingest_calls == [f"partner-contoso/{name}"]  # and never again on the later timer runs


async def test_an_event_found_only_as_an_event_grid_dead_letter_is_ingested(sweeper, settings, graph, ingest_calls):
    host = sweeper
    name = "standard/dead-lettered.csv"
    data = csv_bytes([portal_row("SW-B1")])
    upload(settings, "device-uploads", name, data)
    # Neither subscription delivered the event (e.g. the app and the journal queue were unreachable for 24 h):
    # Event Grid dead-lettered both deliveries. Nothing was journaled, no trigger ran.
    etag = etag_of(settings, "device-uploads", name)
    account = blob_service(settings).account_name
    for subscription in ("ingest-device-uploads", "journal-device-uploads"):
        event = blob_created_event("device-uploads", name, etag, len(data), account)
        event["eventTime"] = (datetime.now(UTC) - timedelta(hours=24)).isoformat().replace("+00:00", "Z")
        dead_letter(settings, subscription, [event])
    assert journal_messages(settings) == []

    swept = await reconcile_run(host)
    assert swept.deadlettered == 2 and swept.ingested == [f"device-uploads/{name}"]
    assert swept.already == 1  # the second copy of the event found the upload done
    assert ingest_calls == [f"device-uploads/{name}"] and queued_serials(host) == ["SW-B1"]
    assert host.runtime.store.get_upload(upload_id_for("device-uploads", name, etag)).status == "complete"
    assert report(settings, "device-uploads", name)["counts"]["accepted"] == 1
    dead_letters = blob_service(settings).get_container_client(settings.upload_deadletter_container)
    assert list(dead_letters.list_blobs()) == []  # handled dead letters are deleted

    again = await reconcile_run(host)
    assert (again.deadlettered, again.ingested) == (0, []) and ingest_calls == [f"device-uploads/{name}"]
    await settle(host)
    assert host.runtime.store.get_device("SW-B1").state == DeviceState.READY


async def test_an_upload_the_trigger_finished_is_not_ingested_again_by_the_sweep(
    sweeper, settings, graph, ingest_calls
):
    host = sweeper
    name = "standard/normal.csv"
    upload(settings, "device-uploads", name, csv_bytes([portal_row("SW-C1"), portal_row("SW-C2")]))
    assert host.poll_uploads() == 1  # the blob trigger ran it
    assert ingest_calls == [f"device-uploads/{name}"]
    assert len(journal_messages(settings)) == 1  # and the journal subscription has the same event
    report = blob_service(settings).get_blob_client("device-uploads", f"_reports/{name}.result.json")
    rows_before = json.loads(report.download_blob().readall())["rows"]

    swept = await reconcile_run(host)
    assert (swept.events, swept.already, swept.ingested) == (1, 1, [])
    assert ingest_calls == [f"device-uploads/{name}"]  # the sweep did not run ingest
    assert journal_count(settings) == 0  # the event is done: deleted from the journal
    assert queued_serials(host) == ["SW-C1", "SW-C2"]
    # The timer may refresh the report's device states, but it is the same upload's report, same rows.
    after = json.loads(report.download_blob().readall())["rows"]
    assert [(r["line"], r["serial"], r["outcome"]) for r in after] == [
        (r["line"], r["serial"], r["outcome"]) for r in rows_before
    ]
    assert len(list(host.runtime.store.all_uploads())) == 1


async def test_the_apps_own_reports_are_never_swept(sweeper, settings, graph, ingest_calls):
    host = sweeper
    name = "standard/with-report.csv"
    upload(settings, "partner-contoso", name, csv_bytes([portal_row("SW-D1")]))
    host.poll_uploads()
    host.poll_uploads()  # the reports it wrote are new blobs, but the subscriptions' filter leaves them out
    reports = sorted(
        b.name for b in blob_service(settings).get_container_client("partner-contoso").list_blobs("_reports/")
    )
    assert f"_reports/{name}.result.csv" in reports and f"_reports/{name}.result.json" in reports
    assert [m["subject"].rsplit("/blobs/", 1)[1] for m in journal_messages(settings)] == [name]

    # Events for the reports anyway (a subscription deployed without the filter, an old dead letter), and a
    # partner's own "_Reports/" upload (the filter is case-insensitive, and so is the sweep).
    upload(settings, "partner-contoso", "_Reports/sneaky.csv", csv_bytes([portal_row("SW-D2")]))
    journal = queue_service(settings).get_queue_client(settings.upload_events_queue)
    account = blob_service(settings).account_name
    events = [
        blob_created_event("partner-contoso", blob, etag_of(settings, "partner-contoso", blob), 1, account)
        for blob in [*reports, "_Reports/sneaky.csv"]
    ]
    for event in events:
        journal.send_message(json.dumps(event))
    dead_letter(settings, "ingest-partner-contoso", [dict(e) for e in events])

    swept = await reconcile_run(host)
    assert swept.ingested == [] and swept.failed == [] and swept.poisoned == []
    assert swept.already == 1 and swept.ignored == 2 * len(events)
    assert ingest_calls == [f"partner-contoso/{name}"]  # only the trigger's run of the upload
    assert journal_count(settings) == 0  # ignored events are deleted, not retried
    assert [u.blob_name for u in host.runtime.store.all_uploads()] == [name]
    assert host.runtime.store.get_device("SW-D2") is None and queued_serials(host) == ["SW-D1"]


async def test_the_sweep_leaves_a_fresh_upload_to_the_blob_trigger(host, settings, graph, ingest_calls):
    """With the real grace period (2 minutes) a sweep that runs right after an upload, before the trigger
    got to it, does not race the trigger: it leaves the event for a later sweep and ingests nothing."""
    assert host.settings.sweep_grace_seconds == 120
    name = "standard/fresh.csv"
    upload(settings, "device-uploads", name, csv_bytes([portal_row("SW-E1")]))
    host.upload_events.publish_new(host.blob_trigger)  # the events are out; the trigger has not run yet

    swept = await reconcile_run(host)
    assert (swept.events, swept.deferred, swept.ingested) == (1, 1, [])
    assert ingest_calls == [] and queued_serials(host) == []
    assert journal_messages(settings) == [] and journal_count(settings) == 1  # kept, hidden until the grace is over

    assert host.blob_trigger.run_once().succeeded == [f"device-uploads/{name}"]
    assert ingest_calls == [f"device-uploads/{name}"] and queued_serials(host) == ["SW-E1"]


async def test_an_upload_whose_name_the_trigger_cannot_read_is_still_answered_by_the_sweep(
    sweeper, settings, graph, ingest_calls
):
    """A '#' in a name cuts it where the blob extension parses the event's URL, so the trigger's message
    names a blob that does not exist; the journal event's subject has the whole name, so the sweep ingests
    it, and the partner reads why it was refused next to the upload."""
    host = sweeper
    name = "standard/order#7.csv"
    upload(settings, "device-uploads", name, csv_bytes([portal_row("SW-H1")]))
    host.upload_events.publish_new(host.blob_trigger)
    run = host.blob_trigger.run_once()
    assert run.blob_not_found == ["device-uploads/standard/order"] and ingest_calls == []
    swept = await reconcile_run(host)
    assert swept.ingested == [f"device-uploads/{name}"] and queued_serials(host) == []
    (row,) = report(settings, "device-uploads", name)["rows"]  # refused, with a reason next to the upload
    assert row["code"] == "upload.bad_name" and "'#'" in row["message"], row
