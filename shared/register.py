"""Register queued devices in Autopilot: one Graph ``import`` call per delivered batch.

Idempotent by construction: a device whose import is already pending or done is skipped; a device left
"importing" by a crash between the Graph call and the state write is first looked up in Graph's imported
identities and adopted if found, so a message delivered twice never imports twice. Settlement (complete,
retry later, dead-letter) is decided here for the whole batch, in one place.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pydantic import ValidationError

from .errors import describe_refusal
from .graph.autopilot import AutopilotClient, GraphRefused, GraphUnavailable, ImportedRecord
from .intake.model import serial_key
from .messages import RegistrationMessage
from .queue import Delivery, Settlement
from .state import DeviceRecord, StateStore, now_iso
from .states import IMPORT_DONE, DeviceState

log = logging.getLogger("registrar.register")


@dataclass(slots=True)
class _Work:
    delivery: Delivery
    message: RegistrationMessage
    interrupted: bool = False  # an earlier delivery may have reached Graph


async def register_batch(deliveries: list[Delivery], store: StateStore, graph: AutopilotClient) -> list[Settlement]:
    settlements: list[Settlement] = []
    work: list[_Work] = []
    for delivery in deliveries:
        try:
            message = RegistrationMessage.from_json(delivery.body)
        except ValidationError as error:
            settlements.append(
                Settlement(delivery, "dead_letter", f"malformed registration message: {error.error_count()} error(s)")
            )
            continue
        decision, interrupted = _claim(message, store)
        if decision is None:
            work.append(_Work(delivery, message, interrupted))
        else:
            settlements.append(Settlement(delivery, "complete", decision))
    for item in work:
        log.info(
            "registering device",
            extra={
                "serial": item.message.serial,
                "fingerprint": item.message.fingerprint,
                "upload_id": item.message.upload_id,
                "message_id": item.message.message_id,
                "delivery_count": item.delivery.delivery_count,
            },
        )
    if not work:
        return settlements
    adopted = await _adopt_interrupted(work, store, graph)
    todo = [w for w in work if serial_key(w.message.serial) not in adopted]
    settlements += [
        Settlement(w.delivery, "complete", "adopted an import made before a crash")
        for w in work
        if serial_key(w.message.serial) in adopted
    ]
    if todo:
        settlements += await _import(todo, store, graph)
    return settlements


def _claim(message: RegistrationMessage, store: StateStore) -> tuple[str | None, bool]:
    """Move the device to IMPORTING, or say why there is nothing to do; and whether an earlier attempt
    was interrupted."""
    reason: list[str] = []

    def claim(record: DeviceRecord) -> None:
        reason.clear()
        if record.hash_digest != message.hash_digest:
            reason.append("stale message: the device was re-uploaded with another hash")
        elif record.state in IMPORT_DONE and not _replayable(record):
            reason.append(f"already {record.state}")
        else:
            record.attempts += 1
            record.message = "" if record.state == DeviceState.QUEUED else record.message
            if record.state == DeviceState.QUEUED or _replayable(record):
                record.state = DeviceState.IMPORTING
                record.error_code = ""
            else:  # IMPORTING: a previous delivery may have reached Graph; _adopt_interrupted checks
                record.error_code = "interrupted"

    saved = store.update_device(message.serial, claim)
    if saved is None:
        return "no device record for this message (deleted?)", False
    return (reason[0] if reason else None), saved.error_code == "interrupted"


def _replayable(record: DeviceRecord) -> bool:
    """A device that failed only because Graph was unavailable: a replayed message registers it."""
    return record.state == DeviceState.FAILED and record.error_code == "dead_lettered"


async def _adopt_interrupted(work: list[_Work], store: StateStore, graph: AutopilotClient) -> set[str]:
    """Devices whose earlier attempt may have reached Graph: look for their import records (one paged list)."""
    interrupted = {
        serial_key(w.message.serial)
        for w in work
        if (r := store.get_device(w.message.serial)) is not None and r.error_code == "interrupted"
    }
    if not interrupted:
        return set()
    try:
        existing = await graph.list_imports()
    except GraphUnavailable:
        return set()  # import again below; at worst Graph answers 806 for a duplicate, never a second device
    found: dict[str, ImportedRecord] = {
        serial_key(r.serial): r for r in existing if serial_key(r.serial) in interrupted
    }
    for key, record in found.items():
        work_item = next(w for w in work if serial_key(w.message.serial) == key)
        _mark_pending(store, work_item.message, record)
    return set(found)


async def _import(todo: list[_Work], store: StateStore, graph: AutopilotClient) -> list[Settlement]:
    try:
        records = await graph.import_devices([w.message for w in todo])
    except GraphUnavailable as error:
        return [_transient(w, store, str(error), error.retry_after) for w in todo]
    except GraphRefused as error:
        if len(todo) > 1:  # one bad device must not fail its batch: isolate it
            settlements = []
            for item in todo:
                settlements += await _import([item], store, graph)
            return settlements
        return [_refused(todo[0], store, error)]
    by_serial = {serial_key(r.serial): r for r in records}
    settlements = []
    for item in todo:
        record = by_serial.get(serial_key(item.message.serial))
        if record is None:
            settlements.append(_transient(item, store, "Graph did not return an import record for this device", 0))
            continue
        _mark_pending(store, item.message, record)
        settlements.append(Settlement(item.delivery, "complete", "imported"))
    return settlements


def _mark_pending(store: StateStore, message: RegistrationMessage, record: ImportedRecord) -> None:
    def pending(device: DeviceRecord) -> None:
        device.state = DeviceState.PENDING
        device.import_id = record.id
        device.error_code = ""
        device.message = "Registration Pending: Intune is processing the import"
        device.pending_since = now_iso()

    store.update_device(message.serial, pending)
    log.info(
        "device import accepted",
        extra={"serial": message.serial, "fingerprint": message.fingerprint, "import_id": record.id},
    )


def _transient(item: _Work, store: StateStore, reason: str, retry_after: float) -> Settlement:
    log.warning(
        "graph unavailable, will retry",
        extra={
            "serial": item.message.serial,
            "reason": reason,
            "fingerprint": item.message.fingerprint,
            "delivery_count": item.delivery.delivery_count,
        },
    )
    if not item.delivery.last_attempt:
        return Settlement(item.delivery, "retry", reason, retry_after)

    def give_up(device: DeviceRecord) -> None:
        device.state = DeviceState.FAILED
        device.error_code = "dead_lettered"
        device.message = (
            f"Registration failed: Microsoft Graph was unavailable after {item.delivery.delivery_count} "
            f"attempts ({reason}); the message was dead-lettered and can be replayed"
        )

    store.update_device(item.message.serial, give_up)
    return Settlement(item.delivery, "dead_letter", reason)


def _refused(item: _Work, store: StateStore, error: GraphRefused) -> Settlement:
    code, message = describe_refusal(error)

    def fail(device: DeviceRecord) -> None:
        device.state = DeviceState.FAILED
        device.error_code = code
        device.message = message

    store.update_device(item.message.serial, fail)
    return Settlement(item.delivery, "complete", message)
