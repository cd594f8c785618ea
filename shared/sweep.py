"""The upload sweep: no upload is lost, whatever happened to its blob-trigger event.

Every ``BlobCreated`` event of an upload container goes to two Event Grid subscriptions
(infra/modules/eventgrid.bicep): the webhook that feeds the blob trigger, and a storage-queue
subscription that journals the event in the data account's ``upload-events`` queue. Both dead-letter to
the ``upload-events-deadletter`` container. The reconcile timer calls ``sweep_uploads``, which drains the
journal and the dead-letter container and ingests every upload that has no finished upload record: an
event the host dropped (``FunctionNotFound`` while a new partner's function was not indexed yet), a
webhook delivery that was dead-lettered, a host that was down, an upload whose five tries were poisoned.

Cost: only new events are read (a drained message is deleted), so a sweep costs O(new blobs), never
O(all blobs): per event one receive per 32 events, one ``get_blob_properties``, one upload-record lookup,
one delete (``bench/sweep.py``). Ingest is idempotent (the upload id is container, name and ETag), so an
upload both the trigger and the sweep see is processed once.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import BlobClient, BlobServiceClient
from azure.storage.queue import QueueServiceClient

from .config import REPORTS_PREFIX, Settings
from .ingest import upload_id_for
from .state import StateStore

log = logging.getLogger("registrar.sweep")

_SUBJECT = "/blobServices/default/containers/"
# A journal message taken by a sweep stays invisible this long; one that is not deleted (its ingest failed)
# comes back to a later sweep.
VISIBILITY_SECONDS = 300
# Tries before a journal event whose ingest keeps failing goes to ``<journal>-poison`` (as the blob
# extension's MaxDequeueCount).
MAX_TRIES = 5
# An upload still "processing" this long after its event is taken as abandoned (the trigger's run was cut
# off and its retries poisoned): the sweep ingests it again. Well past host.json's functionTimeout (10
# minutes) and Flex Consumption's default (30), so a run still going is never taken for abandoned.
ABANDONED_SECONDS = 30 * 60
MAX_EVENTS_PER_SWEEP = 2000  # the rest waits for the next timer run


@dataclass(slots=True)
class SweepSummary:
    events: int = 0  # journal events read
    deadlettered: int = 0  # events read from dead-letter blobs
    ingested: list[str] = field(default_factory=list)  # "container/blob" the trigger had missed
    already: int = 0  # had a finished upload record: the trigger did it
    deferred: int = 0  # too recent (the trigger may be on it) or processing: left for a later sweep
    ignored: int = 0  # not an upload, not an upload container, or the blob is gone
    failed: list[str] = field(default_factory=list)
    poisoned: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class BlobEvent:
    container: str
    blob_name: str
    event_time: datetime | None


def parse_event(text: str) -> list[BlobEvent]:
    """Events from a journal message (one Event Grid schema event; base64 tolerated) or a dead-letter
    blob (a JSON array of events, each with Event Grid's dead-letter properties)."""
    try:
        body = json.loads(text)
    except json.JSONDecodeError:
        try:
            body = json.loads(base64.b64decode(text, validate=True))
        except (binascii.Error, ValueError):
            raise ValueError("not an Event Grid event (neither JSON nor base64 JSON)") from None
    events = body if isinstance(body, list) else [body]
    parsed = []
    for event in events:
        if not isinstance(event, dict) or event.get("eventType") != "Microsoft.Storage.BlobCreated":
            continue
        subject = str(event.get("subject", ""))
        if not subject.startswith(_SUBJECT) or "/blobs/" not in subject:
            raise ValueError(f"not a blob subject: {subject[:120]!r}")
        container, _, name = subject[len(_SUBJECT) :].partition("/blobs/")
        parsed.append(BlobEvent(container, name, _time(event.get("eventTime"))))
    return parsed


def _time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class UploadSweep:
    def __init__(
        self,
        settings: Settings,
        blobs: BlobServiceClient,
        queues: QueueServiceClient,
        store: StateStore,
        ingest: Callable[[BlobClient], object],
        *,
        grace_seconds: float | None = None,
    ) -> None:
        self.settings = settings
        self.blobs = blobs
        self.store = store
        self.ingest = ingest
        self.journal = queues.get_queue_client(settings.upload_events_queue)
        self.poison = queues.get_queue_client(settings.upload_events_queue + "-poison")
        self.grace = settings.sweep_grace_seconds if grace_seconds is None else grace_seconds

    def run(self, now: datetime | None = None, max_events: int = MAX_EVENTS_PER_SWEEP) -> SweepSummary:
        now = now or datetime.now(UTC)
        summary = SweepSummary()
        self._drain_journal(now, summary, max_events)
        self._drain_dead_letters(now, summary)
        if summary.ingested or summary.failed or summary.poisoned:
            log.warning(
                "upload sweep ingested uploads the blob trigger missed",
                extra={"ingested": summary.ingested, "failed": summary.failed, "poisoned": summary.poisoned},
            )
        return summary

    # -- the journal (storage-queue subscription) -------------------------------------------------------------
    def _drain_journal(self, now: datetime, summary: SweepSummary, max_events: int) -> None:
        try:
            for message in self._receive(max_events):
                summary.events += 1
                try:
                    events = parse_event(message.content)
                except ValueError as error:
                    self._poison(message, f"unreadable journal message: {error}", summary, "?")
                    continue
                outcomes = [self._handle(event, now, summary) for event in events]
                if all(o == "done" for o in outcomes):
                    self.journal.delete_message(message)
                elif "failed" in outcomes and message.dequeue_count >= MAX_TRIES:
                    self._poison(message, "ingest failed on every try", summary, events[0].blob_name)
                elif "deferred" in outcomes:
                    self.journal.update_message(message, visibility_timeout=self._wait(events, now))
                # "failed" below MAX_TRIES: the message comes back after VISIBILITY_SECONDS
        except ResourceNotFoundError:
            log.warning("upload journal queue missing", extra={"queue": self.settings.upload_events_queue})

    def _receive(self, max_events: int) -> Iterator:
        pages = self.journal.receive_messages(messages_per_page=32, visibility_timeout=VISIBILITY_SECONDS)
        for count, message in enumerate(pages):
            if count >= max_events:
                return
            yield message

    def _wait(self, events: list[BlobEvent], now: datetime) -> int:
        ages = [(now - e.event_time).total_seconds() for e in events if e.event_time]
        remaining = self.grace - min(ages) if ages else self.grace
        return int(max(1, min(VISIBILITY_SECONDS, remaining + 1)))

    def _poison(self, message, reason: str, summary: SweepSummary, name: str) -> None:
        try:
            self.poison.create_queue()
        except ResourceExistsError:
            pass
        self.poison.send_message(message.content)
        self.journal.delete_message(message)
        summary.poisoned.append(name)
        log.error("upload journal message poisoned", extra={"reason": reason, "blob": name})

    # -- dead-lettered events (either subscription) ------------------------------------------------------------
    def _drain_dead_letters(self, now: datetime, summary: SweepSummary) -> None:
        container = self.blobs.get_container_client(self.settings.upload_deadletter_container)
        try:
            names = [b.name for b in container.list_blobs()]
        except ResourceNotFoundError:
            return
        for name in names:
            client = container.get_blob_client(name)
            try:
                events = parse_event(client.download_blob().readall().decode("utf-8"))
            except ResourceNotFoundError:
                continue
            except (ValueError, UnicodeDecodeError) as error:
                log.error("unreadable dead-letter blob kept", extra={"blob": name, "error": str(error)})
                summary.failed.append(f"{self.settings.upload_deadletter_container}/{name}")
                continue
            summary.deadlettered += len(events)
            # Dead-lettered: the trigger did not get it, so no grace; only a failed ingest keeps the blob.
            outcomes = [self._handle(event, now, summary, dead_lettered=True) for event in events]
            if "failed" not in outcomes:
                client.delete_blob()

    # -- one event --------------------------------------------------------------------------------------------
    def _handle(self, event: BlobEvent, now: datetime, summary: SweepSummary, dead_lettered: bool = False) -> str:
        path = f"{event.container}/{event.blob_name}"
        if event.container not in self.settings.containers or not _is_upload(event.blob_name):
            summary.ignored += 1  # a removed partner's container, or our own reports
            return "done"
        client = self.blobs.get_blob_client(event.container, event.blob_name)
        try:
            etag = client.get_blob_properties().etag  # the blob as it is now, as the trigger reads it
        except ResourceNotFoundError:
            summary.ignored += 1  # gone (BlobNotFound)
            return "done"
        age = (now - event.event_time).total_seconds() if event.event_time else float("inf")
        record = self.store.get_upload(upload_id_for(event.container, event.blob_name, etag))
        if record is not None and record.status in ("complete", "rejected"):
            summary.already += 1
            return "done"
        if record is not None and age < ABANDONED_SECONDS and not dead_lettered:
            summary.deferred += 1  # a run is on it now
            return "deferred"
        if record is None and age < self.grace and not dead_lettered:
            summary.deferred += 1  # the trigger has probably not run yet
            return "deferred"
        try:
            self.ingest(client)
        except Exception:  # noqa: BLE001 - one upload's failure must not stop the sweep
            log.exception("upload sweep could not ingest", extra={"blob": path})
            summary.failed.append(path)
            return "failed"
        summary.ingested.append(path)
        return "done"


def _is_upload(blob_name: str) -> bool:
    """Every blob but the app's own reports: a wrongly named upload is ingested to get its refusal report."""
    return not blob_name.lower().startswith(REPORTS_PREFIX.lower())


def sweep_uploads(
    settings: Settings,
    blobs: BlobServiceClient,
    queues: QueueServiceClient,
    store: StateStore,
    ingest: Callable[[BlobClient], object],
    now: datetime | None = None,
) -> SweepSummary:
    return UploadSweep(settings, blobs, queues, store, ingest).run(now)

