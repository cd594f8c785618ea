"""The timer's work: poll pending imports in bulk and move devices to their next state.

Cost grows with pending work: with no device pending, a run reads nothing from Graph.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from .errors import ALREADY_REGISTERED, describe_import_error
from .graph.autopilot import AutopilotClient, AutopilotDevice, GraphUnavailable, ImportedRecord
from .intake.model import serial_key
from .state import DeviceRecord, StateStore, row_key
from .states import POLLED, DeviceState

log = logging.getLogger("registrar.reconcile")

STUCK_AFTER = timedelta(minutes=60)


@dataclass(slots=True)
class ReconcileSummary:
    checked: int = 0
    registered: int = 0
    failed: int = 0
    still_pending: int = 0
    stuck: int = 0
    deleted_imports: int = 0
    registered_keys: set[str] = field(default_factory=set)  # row keys of the devices Ready since this run
    changed_uploads: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)


async def reconcile_imports(
    store: StateStore, graph: AutopilotClient, *, stuck_after: timedelta = STUCK_AFTER, now: datetime | None = None
) -> ReconcileSummary:
    summary = ReconcileSummary()
    pending = store.pending_serials()
    if not pending:
        return summary
    now = now or datetime.now(UTC)
    try:
        imports = await graph.list_imports()
    except GraphUnavailable as error:
        summary.errors.append(str(error))
        return summary
    by_id = {r.id: r for r in imports}
    by_serial: dict[str, ImportedRecord] = {}
    for record in imports:
        by_serial.setdefault(serial_key(record.serial), record)
    devices: dict[str, AutopilotDevice] | None = None
    finished: list[ImportedRecord] = []
    decided: dict[str, Callable[[DeviceRecord], None]] = {}  # row key -> the change to save
    records = store.get_devices(pending)  # 14 devices per storage call; saved 100 per transaction below
    for serial in pending:
        device = records.get(row_key(serial))
        if device is None:
            continue
        if device.state not in POLLED:
            store.unmark_pending(device)  # an index entry left by an interrupted save
            continue
        summary.checked += 1
        record = by_id.get(device.import_id) or (
            by_serial.get(serial_key(serial)) if device.state == DeviceState.IMPORTING else None
        )
        if record is None or record.status in ("unknown", "pending", "partial"):
            summary.still_pending += 1
            flag = _stuck_flag(device, now, stuck_after)
            if flag is not None:
                decided[device.key] = flag
            summary.stuck += flag is not None or device.error_code == "stuck"
            continue
        if record.status == "complete" or (record.status == "error" and record.error_code == 806):
            if devices is None:
                try:
                    devices = {serial_key(d.serial): d for d in await graph.list_devices()}
                except GraphUnavailable as error:
                    summary.errors.append(str(error))
                    break  # what was decided so far is still saved
            decided[device.key] = _registered(record, devices.get(serial_key(serial)))
            summary.registered += 1
            summary.registered_keys.add(device.key)
        else:
            decided[device.key] = _failed(device, record)
            summary.failed += 1
        summary.changed_uploads.add(device.upload_id)
        finished.append(record)
    # A device that moved on since it was read (an admin's retry, a re-upload) is decided again next run.
    store.update_devices([records[key] for key in decided], lambda d: d.state in POLLED and decided[d.key](d))
    # Intune expects processed import records to be deleted, whatever the outcome. Each delete is a write
    # against the same budget as imports, so deleting is queued and paced rather than done inline.
    store.add_cleanup(r.id for r in finished)
    log.info(
        "reconcile imports",
        extra={
            "checked": summary.checked,
            "registered": summary.registered,
            "failed": summary.failed,
            "pending": summary.still_pending,
        },
    )
    return summary


async def delete_processed_imports(store: StateStore, graph: AutopilotClient, seconds: float, limit: int = 5000) -> int:
    """Delete up to ``limit`` processed import records, 20 per HTTP call, for at most ``seconds``; stop at
    the first throttle (the rest wait for the next run). Called after the fleet's membership work: clean-up
    is the least urgent write, so it takes what the budget has left and never holds back the next run's
    imports and state changes."""
    ids = store.cleanup_ids(limit)
    if not ids:
        return 0
    # While devices wait to be imported, clean-up leaves them part of the budget; otherwise it takes it all.
    waiting = store.registration_waiting()
    gone = await graph.delete_imports(ids, until=time.monotonic() + seconds, background=waiting)
    store.done_cleanups(gone)
    return len(gone)


def _registered(record: ImportedRecord, autopilot: AutopilotDevice | None) -> Callable[[DeviceRecord], None]:
    def apply(d: DeviceRecord) -> None:
        d.import_id = d.import_id or record.id  # found by serial before register saved it
        d.state = DeviceState.READY
        d.error_code = "806" if record.status == "error" else ""
        d.message = ALREADY_REGISTERED if record.status == "error" else "Ready for user"
        if autopilot:
            d.autopilot_id, d.aad_device_id = autopilot.id, autopilot.aad_device_id
        elif record.registration_id:
            d.autopilot_id = record.registration_id

    return apply


def _failed(device: DeviceRecord, record: ImportedRecord) -> Callable[[DeviceRecord], None]:
    # The call support can trace is the import that carried the device (kept by register), not the record.
    code, message = describe_import_error(
        record.error_code, record.error_name, device.import_request_id, device.import_requested_at.removesuffix("Z")
    )

    def apply(d: DeviceRecord) -> None:
        d.import_id = d.import_id or record.id
        d.state = DeviceState.FAILED
        d.error_code, d.message = code, message

    return apply


def _stuck_flag(device: DeviceRecord, now: datetime, stuck_after: timedelta) -> Callable[[DeviceRecord], None] | None:
    """The change that flags a device pending for too long, or None (not yet, or flagged already)."""
    since = device.pending_since or device.updated
    try:
        started = datetime.fromisoformat(since)
    except ValueError:
        return None
    if now - started < stuck_after or device.error_code == "stuck":
        return None
    minutes = int((now - started).total_seconds() // 60)

    def flag(d: DeviceRecord) -> None:
        d.error_code = "stuck"
        d.message = (
            f"Registration Pending for {minutes} minutes: the import looks stuck; Intune may be slow, "
            "or the device may belong to another organisation"
        )

    return flag
