"""Register queued devices in Autopilot: one Graph ``import`` call per delivered batch.

The Service Bus trigger is a batch function with auto-complete: when it returns, the host completes
every message of the batch; when it raises, the host abandons every message, Service Bus redelivers them
at once and, at the queue's max delivery count, dead-letters all of them (docs/functions-host.md). So a
per-device outcome must never raise. Here each device ends its delivery in exactly one way:

- registered or adopted (an import made by an earlier, interrupted attempt is found and kept);
- skipped: nothing to do (already pending or done, or an older attempt than the device's current one);
- rescheduled: Graph said "later" (429, 5xx, network, our own time budget): a copy of the message is sent
  as a scheduled message for a new attempt (new MessageId), when Retry-After says or with jittered backoff;
- failed: Graph refused the device, or it ran out of attempts; the reason is on the device, and an admin
  can retry it (``registrar retry``, the status API);
- malformed: the body cannot be read; recorded in the state store and logged.

Only infrastructure faults (storage unreachable) raise: then the whole batch is rightly abandoned and
redelivered, and every step above is idempotent. The ``import`` POST is never repeated blindly: after a
5xx or a broken connection it may have been applied, so the next attempt looks the device up first.
Every batch finishes inside a time budget well under the queue's lock duration.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import ValidationError

from .errors import describe_refusal
from .graph.autopilot import AutopilotClient, GraphRefused, GraphUnavailable, ImportedRecord
from .intake.model import serial_key
from .messages import RegistrationMessage
from .queue import Delivery, MessageSender
from .requeue import requeue_device
from .state import DeviceRecord, StateStore, now_iso, row_key
from .states import IMPORT_DONE, DeviceState

log = logging.getLogger("registrar.register")

Result = Literal["registered", "adopted", "skipped", "rescheduled", "failed", "malformed"]


@dataclass(frozen=True, slots=True)
class DeviceOutcome:
    delivery: Delivery
    result: Result
    reason: str = ""
    serial: str = ""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how late a device is tried again when Graph says "later"."""

    max_attempts: int = 5
    base_delay: float = 30.0  # first backoff when Graph gives no Retry-After
    max_delay: float = 900.0
    time_budget: float = 150.0  # seconds a batch may spend; keep well under the lock duration

    @classmethod
    def for_lock(cls, lock_seconds: float, max_attempts: int) -> RetryPolicy:
        """Half the lock duration for Graph; the rest covers storage writes and settlement."""
        return cls(max_attempts=max_attempts, time_budget=max(2.0, lock_seconds / 2))

    def delay(self, attempt: int, retry_after: float, rng: random.Random) -> float:
        """Retry-After when Graph sends one (plus up to 10 % so instances do not return together);
        otherwise exponential backoff with "equal jitter" (half fixed, half random)."""
        if retry_after > 0:
            return retry_after * (1 + 0.1 * rng.random())
        backoff = min(self.max_delay, self.base_delay * 2 ** max(0, attempt - 1))
        return backoff / 2 + rng.uniform(0, backoff / 2)


@dataclass(slots=True)
class _Work:
    delivery: Delivery
    message: RegistrationMessage
    failures: int  # failed attempts before this one (429s are waits, not failures)
    interrupted: bool  # an earlier attempt may have reached Graph: look before importing
    record: DeviceRecord  # as claimed (with its ETag): the next save needs no read


@dataclass(slots=True)
class RegisterContext:
    store: StateStore
    graph: AutopilotClient
    sender: MessageSender
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    rng: random.Random = field(default_factory=random.Random)
    clock: Callable[[], float] = time.monotonic


async def register_batch(deliveries: list[Delivery], ctx: RegisterContext) -> list[DeviceOutcome]:
    deadline = ctx.clock() + ctx.policy.time_budget
    outcomes: list[DeviceOutcome] = []
    parsed: list[tuple[Delivery, RegistrationMessage]] = []
    seen: set[str] = set()
    for delivery in deliveries:
        try:
            message = RegistrationMessage.from_json(delivery.body)
        except ValidationError as error:
            reason = f"malformed registration message: {error.error_count()} error(s)"
            log.error(reason, extra={"message_id": delivery.message_id})
            ctx.store.record_bad_message(delivery.message_id, reason)
            outcomes.append(DeviceOutcome(delivery, "malformed", reason))
            continue
        if serial_key(message.serial) in seen:
            # Two copies of one device in one batch (a redelivery beside a re-driven copy, or a copy that
            # slipped past duplicate detection): one import item per device, or Graph fails the second
            # as ZtdDeviceDuplicated and the device would read "Registration failed".
            outcomes.append(DeviceOutcome(delivery, "skipped", "another copy is in this batch", message.serial))
            continue
        seen.add(serial_key(message.serial))
        parsed.append((delivery, message))
    work, skipped = _claim(parsed, ctx.store)
    outcomes += skipped
    if not work:
        return outcomes
    for item in work:
        log.info(
            "registering device",
            extra={
                "serial": item.message.serial,
                "fingerprint": item.message.fingerprint,
                "upload_id": item.message.upload_id,
                "message_id": item.message.message_id,
                "failures": item.failures,
                "delivery_count": item.delivery.delivery_count,
            },
        )
    interrupted = [w for w in work if w.interrupted]
    try:
        adopted = await _adopt(interrupted, ctx.store, ctx.graph, deadline, ctx.clock)
    except GraphUnavailable as error:  # cannot tell whether they were imported: ask again later
        outcomes += await _reschedule(interrupted, ctx, error, maybe_applied=True)
        work = [w for w in work if not w.interrupted]
        adopted = set()
    outcomes += [DeviceOutcome(w.delivery, "adopted", "import found", w.message.serial) for w in work if _key(w) in adopted]
    todo = [w for w in work if _key(w) not in adopted]
    if todo:
        outcomes += await _import(todo, ctx, deadline)
    return outcomes


def _key(item: _Work) -> str:
    return serial_key(item.message.serial)


def _claim(
    parsed: list[tuple[Delivery, RegistrationMessage]], store: StateStore
) -> tuple[list[_Work], list[DeviceOutcome]]:
    """Move each device to Importing for this attempt, or say why its message has nothing to do. The
    batch's devices are read 14 to a storage call and claimed in one transaction (each on its ETag)."""
    messages = {row_key(m.serial): m for _, m in parsed}
    reasons: dict[str, str] = {}

    def claim(record: DeviceRecord) -> bool:
        message = messages[record.key]
        reasons.pop(record.key, None)
        if record.hash_digest != message.hash_digest:
            reasons[record.key] = "stale message: the device was re-uploaded with another hash"
        elif message.generation != record.generation:
            reasons[record.key] = f"stale message: attempt {message.generation} was superseded by {record.generation}"
        elif record.state in IMPORT_DONE:
            reasons[record.key] = f"already {record.state}"
        if record.key in reasons:
            return False
        # Importing already (same attempt): this is a redelivery of a batch that was abandoned or lost
        # its lock, or a retry after Graph may have applied the import. Look before importing again.
        record.error_code = "interrupted" if record.state == DeviceState.IMPORTING else ""
        record.state = DeviceState.IMPORTING
        record.next_attempt = ""
        return True

    serials = [m.serial for _, m in parsed]
    saved = store.update_devices(store.get_devices(serials).values(), claim) if serials else {}
    work: list[_Work] = []
    skipped: list[DeviceOutcome] = []
    for delivery, message in parsed:
        key = row_key(message.serial)
        record = saved.get(key)
        if record is None:
            reason = reasons.get(key, "no device record for this message (deleted?)")
            skipped.append(DeviceOutcome(delivery, "skipped", reason, message.serial))
        else:
            work.append(_Work(delivery, message, record.attempts, record.error_code == "interrupted", record))
    return work, skipped


async def _adopt(
    interrupted: list[_Work], store: StateStore, graph: AutopilotClient, deadline: float, clock: Callable[[], float]
) -> set[str]:
    """Devices whose earlier attempt may have reached Graph: look for their import records (one paged list)."""
    if not interrupted:
        return set()
    wanted = {_key(w): w for w in interrupted}
    existing = await _within(deadline, clock, graph.list_imports(), "listing imports")
    found: dict[str, ImportedRecord] = {serial_key(r.serial): r for r in existing if serial_key(r.serial) in wanted}
    _mark_pending(store, [(wanted[key], record) for key, record in found.items()])
    return set(found)


async def _within(deadline: float, clock: Callable[[], float], call, what: str):
    """Await a Graph call, but never past the batch's time budget (the SDK's own retries included)."""
    remaining = deadline - clock()
    if remaining <= 0:
        call.close()
        raise GraphUnavailable(f"time budget of the batch spent before {what}", maybe_applied=False)
    try:
        return await asyncio.wait_for(call, remaining)
    except TimeoutError as error:
        message = f"Graph did not answer within the batch's time budget ({what})"
        raise GraphUnavailable(message, maybe_applied=True) from error


async def _import(todo: list[_Work], ctx: RegisterContext, deadline: float) -> list[DeviceOutcome]:
    try:
        result = await _within(deadline, ctx.clock, ctx.graph.import_devices([w.message for w in todo]), "import")
    except GraphUnavailable as error:
        return await _reschedule(todo, ctx, error, maybe_applied=error.maybe_applied)
    except GraphRefused as error:
        if len(todo) > 1:  # one bad device must not fail its batch: isolate it
            outcomes: list[DeviceOutcome] = []
            for item in todo:
                outcomes += await _import([item], ctx, deadline)
            return outcomes
        return [_refused(todo[0], ctx.store, error)]
    by_serial = {serial_key(r.serial): r for r in result.records}
    imported = [(w, by_serial[_key(w)]) for w in todo if _key(w) in by_serial]
    missing = [w for w in todo if _key(w) not in by_serial]
    _mark_pending(ctx.store, imported, (result.request_id, result.at))
    outcomes = [DeviceOutcome(w.delivery, "registered", "imported", w.message.serial) for w, _ in imported]
    if missing:
        error = GraphUnavailable("Graph did not return an import record for this device", maybe_applied=True)
        outcomes += await _reschedule(missing, ctx, error, maybe_applied=True)
    return outcomes


def _mark_pending(
    store: StateStore, imported: list[tuple[_Work, ImportedRecord]], call: tuple[str, str] = ("", "")
) -> None:
    """Pending, with the import's id and the call's request id: one transaction on the ETags of the claim."""
    found = {row_key(w.message.serial): (w.message, record) for w, record in imported}

    def pending(device: DeviceRecord) -> bool:
        message, record = found[device.key]
        if device.generation != message.generation:
            return False
        if device.state != DeviceState.IMPORTING:
            # The timer got there first: it found this import (by serial) and already moved the device on
            # (Ready, failed), and the import record may be deleted by now. Setting Pending again would leave
            # the device waiting for a record that no longer exists; the call's ids are still worth keeping.
            if device.import_id not in ("", record.id) or (device.import_request_id and not call[0]):
                return False
            device.import_id = record.id
            if call[0]:
                device.import_request_id, device.import_requested_at = call
            return True
        device.state = DeviceState.PENDING
        device.import_id = record.id
        if call[0]:
            device.import_request_id, device.import_requested_at = call
        device.error_code = ""
        device.message = "Registration Pending: Intune is processing the import"
        device.pending_since = now_iso()
        return True

    store.update_devices([w.record for w, _ in imported], pending)
    for item, record in imported:
        log.info(
            "device import accepted",
            extra={"serial": item.message.serial, "fingerprint": item.message.fingerprint, "import_id": record.id},
        )


async def _reschedule(
    items: list[_Work], ctx: RegisterContext, error: GraphUnavailable, *, maybe_applied: bool
) -> list[DeviceOutcome]:
    """Complete these deliveries and send each device's next attempt as a scheduled message.

    The copies are sent before the device records move to the new generation: if the process dies in
    between, the copies are stale (ignored) and the abandoned originals are redelivered, so nothing is
    lost and nothing runs twice.
    """
    outcomes: list[DeviceOutcome] = []
    failures = {_key(w): w.failures + (0 if error.throttled else 1) for w in items}
    retry = [w for w in items if failures[_key(w)] < ctx.policy.max_attempts]
    for item in items:
        if failures[_key(item)] >= ctx.policy.max_attempts:
            outcomes.append(_give_up(item, ctx.store, str(error), failures[_key(item)]))
    if not retry:
        return outcomes
    attempt = max(failures[_key(w)] for w in retry)
    if error.throttled and not error.retry_after:
        # Throttled with no Retry-After (Intune's usual 429): back off further each time it happens again
        # (learn.microsoft.com/graph/throttling: "implementing an exponential backoff retry policy"); the
        # generation counts the device's earlier reschedules.
        attempt = max(attempt, 1 + max(w.message.generation for w in retry))
    delay = ctx.policy.delay(attempt, error.retry_after, ctx.rng)
    at = datetime.now(UTC) + timedelta(seconds=delay)
    ctx.sender.send([w.message.next_attempt(w.message.generation + 1) for w in retry], enqueue_at=at)
    when = at.strftime("%H:%M:%S UTC")
    limit = ctx.policy.max_attempts
    for item in retry:
        failed = failures[_key(item)]
        if error.throttled:
            note = f"Graph asked us to wait ({error}): next try at {when}"
        elif maybe_applied:
            note = f"Graph did not confirm the import ({error}): attempt {failed} of {limit}; checking at {when}"
        else:
            note = f"Graph unavailable ({error}): attempt {failed} of {limit}, next try at {when}"
        generation = item.message.generation
        requeue_device(
            ctx.store,
            item.message.serial,
            note,
            when=lambda r, g=generation: r.generation == g and r.state == DeviceState.IMPORTING,
            next_attempt=at,
            # After a maybe-applied import the device stays Importing: the next attempt looks it up first.
            state=DeviceState.IMPORTING if maybe_applied else DeviceState.QUEUED,
            attempts=failed,
        )
        log.warning(
            "graph unavailable, next attempt scheduled",
            extra={
                "serial": item.message.serial,
                "fingerprint": item.message.fingerprint,
                "reason": str(error),
                "failures": failed,
                "retry_in_seconds": round(delay, 1),
            },
        )
        outcomes.append(DeviceOutcome(item.delivery, "rescheduled", note, item.message.serial))
    return outcomes


def _give_up(item: _Work, store: StateStore, reason: str, failures: int) -> DeviceOutcome:
    message = (
        f"Registration failed: Microsoft Graph was unavailable for {failures} attempts ({reason}); "
        "retry the device when Graph is back"
    )

    def give_up(device: DeviceRecord) -> bool:
        if device.generation != item.message.generation:
            return False
        device.state = DeviceState.FAILED
        device.error_code = "graph_unavailable"
        device.message = message
        device.next_attempt = ""
        device.attempts = failures
        return True

    store.update_device(item.message.serial, give_up)
    log.error("registration failed after retries", extra={"serial": item.message.serial, "reason": reason})
    return DeviceOutcome(item.delivery, "failed", message, item.message.serial)


def _refused(item: _Work, store: StateStore, error: GraphRefused) -> DeviceOutcome:
    code, message = describe_refusal(error)

    def fail(device: DeviceRecord) -> None:
        device.state = DeviceState.FAILED
        device.error_code = code
        device.message = message

    store.update_device(item.message.serial, fail)
    return DeviceOutcome(item.delivery, "failed", message, item.message.serial)
