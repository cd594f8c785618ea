"""The timer's safety net for registration messages that were lost.

A device waits in Queued (or Importing) only while its message travels. If the message never arrives
(a send that failed after the device was recorded, a message purged or dead-lettered by hand, an
instance that died after claiming it), nothing else would move the device again. Once a device has waited
longer than the duplicate-detection window and its scheduled retry time has passed, the timer sends it
a new attempt: a new generation and so a new MessageId, which Service Bus will not drop. A device left
Importing keeps that state, so the new attempt looks its import up in Graph before importing again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from .queue import MessageSender
from .requeue import message_for, requeue_device
from .state import DeviceRecord, StateStore
from .states import DeviceState

log = logging.getLogger("registrar.redrive")


@dataclass(slots=True)
class RedriveSummary:
    redriven: int = 0
    changed_uploads: set[str] | None = None


def redrive_stuck(
    store: StateStore, sender: MessageSender, tenant: str, window_seconds: float, now: datetime | None = None
) -> RedriveSummary:
    now = now or datetime.now(UTC)
    before = (now - timedelta(seconds=window_seconds)).isoformat(timespec="seconds")
    summary = RedriveSummary(changed_uploads=set())
    for waiting in store.devices_waiting_since(before):
        if waiting.next_attempt and waiting.next_attempt > now.isoformat(timespec="seconds"):
            continue  # a retry is scheduled and not due yet
        generation, state = waiting.generation, DeviceState(waiting.state)

        def still_stuck(record: DeviceRecord, g: int = generation, s: DeviceState = state) -> bool:
            return record.generation == g and record.state == s and record.updated < before and bool(record.hardware_hash)

        record = requeue_device(
            store,
            waiting.serial,
            "Queued again: the registration message did not arrive in time",
            when=still_stuck,
            state=state,
        )
        if record is None:
            continue
        sender.send([message_for(record, tenant)])
        summary.redriven += 1
        summary.changed_uploads.add(record.upload_id)
        log.warning(
            "registration re-driven",
            extra={"serial": record.serial, "fingerprint": record.fingerprint, "generation": record.generation},
        )
    return summary
