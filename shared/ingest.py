"""Ingest one upload: route it, validate every row, merge with devices already known, record outcomes,
enqueue accepted devices and write the report.

Safe to run twice on the same blob (a redelivered blob event): the upload id is derived from the blob's
name and ETag, a finished upload is skipped, and a half-finished one is completed without re-enqueueing
devices whose messages were already sent (and a message sent twice is harmless to register).
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from .config import Settings
from .intake import DeviceRow, FileRejected, Rejection, open_devices
from .intake.validate import shown
from .messages import RegistrationMessage
from .queue import MessageSender
from .reports import write_upload_reports
from .requeue import is_retryable_failure, requeue_device
from .routing import UploadRejected, UploadTarget, route
from .spool import IngestSpool
from .state import DeviceRecord, RowOutcome, StateStore, UploadRecord
from .states import DeviceState

log = logging.getLogger("registrar.ingest")

ReportWriter = Callable[[str, str, bytes, str], None]  # container, path, data, content type
StreamOpener = Callable[[], BinaryIO]


@dataclass(slots=True)
class IngestContext:
    settings: Settings
    store: StateStore
    sender: MessageSender
    write_report: ReportWriter


def upload_id_for(container: str, blob_name: str, etag: str) -> str:
    return hashlib.sha256(f"{container}/{blob_name}@{etag}".encode()).hexdigest()[:32]


def ingest_upload(
    container: str, blob_name: str, etag: str, open_stream: StreamOpener, ctx: IngestContext, size: int | None = None
) -> UploadRecord:
    upload_id = upload_id_for(container, blob_name, etag)
    existing = ctx.store.get_upload(upload_id)
    if existing and existing.status in ("complete", "rejected"):
        log.info("upload already processed", extra={"upload_id": upload_id, "status": existing.status})
        return existing
    try:
        target = route(container, blob_name, ctx.settings.profiles)
    except UploadRejected as rejected:
        profile = blob_name.partition("/")[0] if "/" in blob_name else ""
        partner = container.removeprefix("partner-") if container.startswith("partner-") else ""
        upload = UploadRecord(upload_id, container, blob_name, profile, partner, "rejected", rejected.reason)
        _finish(ctx, upload, [RowOutcome(0, "", "rejected", rejected.code, rejected.reason)])
        return upload
    upload = existing or UploadRecord(
        upload_id, container, blob_name, target.profile, target.partner or "", "processing"
    )
    ctx.store.put_upload(upload)
    with IngestSpool() as spool:
        try:
            if size is not None and size > ctx.settings.max_upload_bytes:
                limit = ctx.settings.max_upload_bytes // (1024 * 1024)
                raise FileRejected(
                    f"{container}/{blob_name}",
                    "file.too_large",
                    f"the file is {size // (1024 * 1024)} MiB; the limit is {limit} MiB: split it",
                )
            _process(target, upload_id, open_stream, ctx, spool)
        except FileRejected as error:
            upload.status, upload.reason = "rejected", error.reason
            rejection = error.as_rejection()
            _finish(ctx, upload, [RowOutcome(error.line, "", "rejected", error.code, rejection.row_message)])
            return upload
        upload.status = "complete"
        _finish(ctx, upload, spool)
    return upload


def _finish(ctx: IngestContext, upload: UploadRecord, outcomes: list[RowOutcome] | IngestSpool) -> None:
    """Rows, reports, then the upload record. ``outcomes`` is read from disk (a spool) as it is written out."""
    if isinstance(outcomes, IngestSpool):
        counts, rows = outcomes.counts(), outcomes.outcomes
    else:
        counts, rows = dict(Counter(o.outcome for o in outcomes)), lambda: iter(sorted(outcomes, key=lambda o: o.line))
    upload.accepted, upload.duplicates = counts.get("accepted", 0), counts.get("duplicate", 0)
    upload.moved, upload.rejected = counts.get("moved", 0), counts.get("rejected", 0)
    ctx.store.put_rows(upload.upload_id, rows())
    ctx.store.set_latest_upload(upload.container, upload.blob_name, upload.upload_id)
    write_upload_reports(ctx.write_report, upload, rows(), latest=True)
    ctx.store.put_upload(upload)  # last: "complete" only once rows and reports exist
    log.info(
        "upload processed",
        extra={
            "upload_id": upload.upload_id,
            "status": upload.status,
            "accepted": upload.accepted,
            "duplicates": upload.duplicates,
            "moved": upload.moved,
            "rejected": upload.rejected,
        },
    )


def _process(
    target: UploadTarget, upload_id: str, open_stream: StreamOpener, ctx: IngestContext, spool: IngestSpool
) -> None:
    settings = ctx.settings
    file = f"{target.container}/{target.blob_name}"
    # Pass 1: classify every row of the file (on disk: no hashes kept, memory flat).
    for outcome in open_devices(open_stream(), file, max_bytes=settings.max_upload_bytes):
        spool.classify(outcome)
    spool.finish_classifying()
    # Pass 2: stream again; decide accepted rows against the devices already known, and enqueue. New
    # devices are created 100 to a table transaction; a batch that meets a known device goes row by row.
    profile = settings.profiles.profiles[target.profile]
    fresh: list[tuple[DeviceRow, DeviceRecord, RegistrationMessage]] = []
    outgoing: list[RegistrationMessage] = []

    def decided(row: DeviceRow, outcome: RowOutcome, message: RegistrationMessage | None) -> None:
        spool.record(outcome)
        log.info(
            "row %s",
            outcome.outcome,
            extra={
                "upload_id": upload_id,
                "serial": row.serial,
                "fingerprint": row.fingerprint,
                "line": row.line,
                "code": outcome.code,
            },
        )
        if message:
            outgoing.append(message)
            if len(outgoing) >= 100:
                ctx.sender.send(outgoing)
                outgoing.clear()

    def create_fresh() -> None:
        created = ctx.store.create_devices([record for _, record, _ in fresh])
        for row, record, message in fresh:
            if record.key in created:
                decided(row, RowOutcome(row.line, row.serial, "accepted"), message)
            else:
                decided(row, *_known(row, message, target, profile.group_tag, upload_id, ctx))
        fresh.clear()

    for row in open_devices(open_stream(), file, max_bytes=settings.max_upload_bytes):
        if isinstance(row, Rejection) or not spool.accepted(row.line):
            continue
        prepared = _prepare(row, target, profile.group_tag, upload_id, ctx)
        if isinstance(prepared, RowOutcome):
            decided(row, prepared, None)
            continue
        fresh.append((row, *prepared))
        if len(fresh) >= 100:
            create_fresh()
    create_fresh()
    if outgoing:
        ctx.sender.send(outgoing)


def _prepare(
    row: DeviceRow, target: UploadTarget, profile_tag: str, upload_id: str, ctx: IngestContext
) -> RowOutcome | tuple[DeviceRecord, RegistrationMessage]:
    """A rejection decided from the row alone, or the new device's record and message."""

    def rejected(code: str, reason: str) -> RowOutcome:
        return RowOutcome(row.line, row.serial, "rejected", code, reason)

    if row.group_tag and row.group_tag != profile_tag:
        return rejected(
            "group_tag.profile_mismatch",
            f"the group tag {shown(row.group_tag)} is not the tag of profile {target.profile} "
            f"({shown(profile_tag)}): "
            "the profile decides the tag (leave the column empty)",
        )
    if row.kind != "hash":
        return rejected(
            "tuple.unsupported",
            "rows without a hardware hash (manufacturer, model, serial) are registered through the "
            "partner's own Autopilot channel, not by this service",
        )
    digest = row.hash_digest.hex() if row.hash_digest else ""
    message = RegistrationMessage(
        tenant=ctx.settings.tenant_id,
        serial=row.serial,
        profile=target.profile,
        partner=target.partner or "",
        group_tag=profile_tag,
        hardware_hash=row.hardware_hash or "",
        hash_digest=digest,
        product_key=row.product_key or "",
        assigned_user=row.assigned_user or "",
        upload_id=upload_id,
        file=row.file,
        line=row.line,
    )
    record = DeviceRecord(
        serial=row.serial,
        profile=target.profile,
        partner=target.partner or "",
        group_tag=profile_tag,
        hash_digest=digest,
        upload_id=upload_id,
        file=row.file,
        line=row.line,
        assigned_user=row.assigned_user or "",
        hardware_hash=row.hardware_hash or "",
        product_key=row.product_key or "",
    )
    return record, message


def _known(
    row: DeviceRow,
    message: RegistrationMessage,
    target: UploadTarget,
    profile_tag: str,
    upload_id: str,
    ctx: IngestContext,
) -> tuple[RowOutcome, RegistrationMessage | None]:
    """The device exists already (another upload, or this one interrupted): decide against it."""
    digest = message.hash_digest

    def rejected(code: str, reason: str) -> tuple[RowOutcome, None]:
        return RowOutcome(row.line, row.serial, "rejected", code, reason), None

    known = ctx.store.get_device(row.serial)
    if known is None:  # deleted in between: treat as new next time
        return rejected("device.busy", "the device record changed while this upload was processed: upload it again")
    if known.partner != (target.partner or ""):
        return rejected("serial.owned_elsewhere", "this serial was uploaded by another organisation or partner area")
    if known.hash_digest != digest:
        return rejected(
            "serial.conflict_existing",
            f"serial already received with a different hardware hash (upload {known.upload_id[:8]}, "
            f"{known.file} line {known.line}): nothing changed",
        )
    if known.upload_id == upload_id and known.line == row.line:  # this very row, in an interrupted earlier run
        # The message may never have left: send the same attempt again; if it did, Service Bus drops the copy
        # (same MessageId) and register ignores it anyway (same generation, already claimed).
        resend = message.next_attempt(known.generation) if known.state == DeviceState.QUEUED else None
        return RowOutcome(row.line, row.serial, "accepted"), resend
    if known.state == DeviceState.FAILED and is_retryable_failure(known):
        requeued = requeue_device(
            ctx.store, row.serial, "Queued again: re-uploaded after a failure", (upload_id, row.file, row.line)
        )
        if requeued is None:
            return rejected("device.busy", "the device record changed while this upload was processed: upload it again")
        return RowOutcome(
            row.line,
            row.serial,
            "accepted",
            "device.requeued",
            "registration failed earlier because Graph was unavailable: queued again",
        ), message.next_attempt(requeued.generation)
    if known.profile != target.profile:

        def move(record: DeviceRecord) -> None:
            record.profile, record.group_tag = target.profile, profile_tag

        ctx.store.update_device(row.serial, move)
        return RowOutcome(
            row.line,
            row.serial,
            "moved",
            "device.profile_changed",
            f"moved to profile {target.profile} (was {known.profile}): its group tag and group follow at the next "
            "reconcile",
        ), None
    return RowOutcome(
        row.line,
        row.serial,
        "duplicate",
        "duplicate.known",
        f"already received in an earlier upload ({known.file} line {known.line})",
    ), None
