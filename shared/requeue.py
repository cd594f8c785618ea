"""Starting a new registration attempt for a known device: one place for retries, replays, re-uploads
and the timer's re-drive.

A new attempt raises the device's generation and so gets a new MessageId (see ``messages``): Service Bus
duplicate detection drops only true duplicates of one attempt, and register ignores any older attempt
still travelling. The message is rebuilt from the device record, which keeps the hash for this purpose.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from .messages import RegistrationMessage
from .queue import MessageSender
from .state import DeviceRecord, StateStore
from .states import DeviceState

# Failures that say nothing about the device itself: trying again can succeed.
RETRYABLE_FAILURES = frozenset({"graph_unavailable", "dead_lettered"})


def is_retryable_failure(record: DeviceRecord) -> bool:
    return record.state == DeviceState.FAILED and record.error_code in RETRYABLE_FAILURES


def requeue_device(
    store: StateStore,
    serial: str,
    note: str,
    upload: tuple[str, str, int] | None = None,
    *,
    when: Callable[[DeviceRecord], bool] = lambda record: True,
    next_attempt: datetime | None = None,
    state: DeviceState = DeviceState.QUEUED,
    attempts: int | None = None,
) -> DeviceRecord | None:
    """Move the device to a new attempt (state Queued, generation + 1), if ``when`` holds on the fresh
    record. ``upload`` = (upload id, file, line) when a new upload brought the device again; ``attempts``
    = failed attempts so far, when the caller counts one more."""

    def apply(record: DeviceRecord) -> bool:
        if not when(record):
            return False
        record.generation += 1
        record.state = state
        record.error_code = "" if state == DeviceState.QUEUED else record.error_code
        record.message = note
        record.next_attempt = next_attempt.isoformat(timespec="seconds") if next_attempt else ""
        if upload:
            record.upload_id, record.file, record.line = upload
        if attempts is not None:
            record.attempts = attempts
        return True

    return store.update_device(serial, apply)


def message_for(record: DeviceRecord, tenant: str) -> RegistrationMessage:
    """The registration message of the device's current attempt, rebuilt from its record."""
    return RegistrationMessage(
        tenant=tenant,
        serial=record.serial,
        profile=record.profile,
        partner=record.partner,
        group_tag=record.group_tag,
        hardware_hash=record.hardware_hash,
        hash_digest=record.hash_digest,
        assigned_user=record.assigned_user,
        product_key=record.product_key,
        upload_id=record.upload_id,
        file=record.file,
        line=record.line,
        generation=record.generation,
    )


def replay_failed(store: StateStore, sender: MessageSender, tenant: str, serial: str) -> DeviceRecord | None:
    """An admin's "retry": a failed device gets a new attempt. None when the device is not failed or
    cannot be sent again (no hash kept, e.g. a record from before hashes were kept)."""
    record = requeue_device(
        store,
        serial,
        "Queued again: retried by an administrator",
        when=lambda r: r.state == DeviceState.FAILED and bool(r.hardware_hash),
    )
    if record is not None:
        sender.send([message_for(record, tenant)])
    return record
