"""A Service Bus queue, as the Functions Service Bus extension uses it, on an Azurite storage queue.

No Service Bus emulator runs without Docker, so the local host keeps Service Bus's documented behaviour
on top of a storage queue. Each rule, with its source, is in docs/functions-host.md:

- peek-lock: a received message is locked for ``lock_duration``; completing or abandoning it after the
  lock expired fails with :class:`MessageLockLost`, and the message is delivered again;
- delivery count: +1 on every delivery (abandon or lock expiry); abandon makes it visible at once;
- at ``max_delivery_count`` a message that is abandoned again, or whose lock expires again, goes to the
  dead-letter queue with reason ``MaxDeliveryCountExceeded``;
- duplicate detection: a message whose MessageId was sent within ``duplicate_window`` is accepted and
  dropped;
- scheduled messages: invisible until their enqueue time;
- the batch trigger: up to ``max_batch_size`` messages per call, completed together when the function
  returns, abandoned together when it raises (``autoCompleteMessages``).

The body travels in a small JSON envelope with the Service Bus properties the trigger hands over.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import azure.functions as func
from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableServiceClient, UpdateMode
from azure.functions.servicebus import ServiceBusMessage as FuncServiceBusMessage
from azure.storage.queue import QueueMessage, QueueServiceClient

from shared.messages import RegistrationMessage

from . import host_json
from .host_json import HOST_JSON

log = logging.getLogger("registrar.localhost.servicebus")

MAX_DELIVERY_COUNT_EXCEEDED = "MaxDeliveryCountExceeded"
_MAX_VISIBILITY = 7 * 24 * 3600  # a storage queue hides a message for at most 7 days
# Service Bus quotas: "Maximum size of a message ID | 128"; azure-servicebus refuses a longer one on the client.
MAX_MESSAGE_ID = 128
# A MessageId claimed by a sender that never enqueued its message (it died between the two writes) is free
# again after this long; a concurrent sender of the same MessageId waits for the claim this long at most.
SEND_TAKEOVER_SECONDS = 10.0
_SENDING, _SENT = "sending", "sent"


class MessageLockLost(Exception):
    """The lock expired (or the message was delivered again): Service Bus's MessageLockLost."""


class MessagingEntityNotFound(Exception):
    """The queue does not exist: Service Bus's MessagingEntityNotFound ("Entity associated with the
    operation doesn't exist or it has been deleted"). In Azure, Bicep creates the queue; locally, the host."""


@dataclass(slots=True)
class ReceivedMessage:
    message_id: str
    body: str = field(repr=False)
    delivery_count: int
    enqueued_time: datetime
    locked_until: float  # clock time
    content_type: str
    queued: QueueMessage = field(repr=False)


@dataclass(slots=True)
class QueueCounters:
    sent: int = 0
    duplicates_dropped: int = 0
    completed: int = 0
    abandoned: int = 0
    dead_lettered: int = 0
    lock_lost: int = 0


class LocalServiceBusQueue:
    """One Service Bus queue: the app's :class:`shared.queue.MessageSender` and the trigger's receiver."""

    def __init__(
        self,
        queues: QueueServiceClient,
        tables: TableServiceClient,
        name: str,
        *,
        lock_duration: float = 300.0,
        max_delivery_count: int = 5,
        duplicate_window: float = 3600.0,
        clock: Callable[[], float] = time.time,
        create: bool = False,
    ) -> None:
        """``create``: make the queue and its dead-letter queue, as Bicep does in Azure (the local host and
        tests); otherwise the first send or receive on a queue that does not exist fails, as in Azure."""
        self.name = name
        self.lock_duration = lock_duration
        self.max_delivery_count = max_delivery_count
        self.duplicate_window = duplicate_window
        self._clock = clock
        self._queue = queues.get_queue_client(name)
        self._dead = queues.get_queue_client(name + "-deadletter")  # stands for <queue>/$DeadLetterQueue
        self._exists = create
        if create:
            for client in (self._queue, self._dead):
                try:
                    client.create_queue()
                except ResourceExistsError:
                    pass
        self._ids = tables.create_table_if_not_exists(("sbdedup" + re.sub(r"[^A-Za-z0-9]", "", name))[:63])
        self.counters = QueueCounters()

    # -- sending ----------------------------------------------------------------------------------------------
    def send(self, messages: Sequence[RegistrationMessage], enqueue_at: datetime | None = None) -> None:
        for message in messages:
            self.send_raw(message.to_json(), message.message_id, enqueue_at)

    def send_raw(self, body: str, message_id: str, enqueue_at: datetime | None = None) -> bool:
        """False when duplicate detection dropped it (the send itself succeeds, as on Service Bus).

        Service Bus records the MessageId and enqueues in one step. Here the MessageId is claimed first
        (an insert only one sender can win), then the message is enqueued, then the claim is marked sent.
        A second sender of the same MessageId meanwhile waits for the first to finish and is dropped, as
        Service Bus would drop it; a claim left unsent by a sender that died is taken over after
        ``SEND_TAKEOVER_SECONDS``, so a crash between the two writes never drops every resend."""
        if len(message_id) > MAX_MESSAGE_ID:  # the SDK's own check, before anything is sent
            raise ValueError(f"message_id cannot be longer than {MAX_MESSAGE_ID} characters.")
        self._check_exists()
        if not self._claim(message_id):
            self.counters.duplicates_dropped += 1
            log.info("duplicate MessageId dropped", extra={"message_id": message_id})
            return False
        now = datetime.now(UTC)
        envelope = {
            "messageId": message_id,
            "contentType": "application/json",
            "enqueuedTimeUtc": (enqueue_at or now).isoformat(),
            "body": body,
        }
        delay = (enqueue_at - now).total_seconds() if enqueue_at else 0
        visibility = min(_MAX_VISIBILITY, math.ceil(delay)) if delay > 0 else None
        self._queue.send_message(json.dumps(envelope), visibility_timeout=visibility)
        self._ids.upsert_entity({"PartitionKey": "id", "RowKey": message_id, "sentAt": self._clock(), "state": _SENT})
        self.counters.sent += 1
        return True

    def _claim(self, message_id: str) -> bool:
        """True when this sender may enqueue the message: no send of its MessageId within the window."""
        claim = {"PartitionKey": "id", "RowKey": message_id, "sentAt": self._clock(), "state": _SENDING}
        while True:
            try:
                self._ids.create_entity(claim)
                return True
            except ResourceExistsError:
                pass
            try:
                seen = self._ids.get_entity("id", message_id)
            except ResourceNotFoundError:
                continue  # gone meanwhile: claim it afresh
            age = self._clock() - float(seen["sentAt"])
            sending = seen.get("state") == _SENDING
            if not sending and age < self.duplicate_window:
                # Whether a dropped resend extends the window is not documented: the stricter reading, it does.
                self._ids.upsert_entity({**seen, "sentAt": self._clock()})
                return False
            if sending and age < SEND_TAKEOVER_SECONDS:
                time.sleep(0.05)  # another sender is between its claim and its send: wait for it
                continue
            try:  # sent outside the window, or a claim its sender never completed: take it over
                claim["sentAt"] = self._clock()
                self._ids.update_entity(claim, mode=UpdateMode.REPLACE, etag=seen.metadata["etag"],
                                        match_condition=MatchConditions.IfNotModified)  # fmt: skip
                return True
            except (ResourceModifiedError, ResourceNotFoundError):
                continue  # another sender got there first: look again

    def close(self) -> None:
        pass  # the clients belong to the host; nothing to release per sender

    # -- receiving and settling -------------------------------------------------------------------------------
    def _check_exists(self) -> None:
        if self._exists:
            return
        try:
            self._queue.get_queue_properties()
        except ResourceNotFoundError:
            raise MessagingEntityNotFound(
                f"the Service Bus queue '{self.name}' does not exist (REGISTRATION_QUEUE names a queue Bicep"
                " creates; locally `registrar dev` creates it)"
            ) from None
        self._exists = True

    def receive(self, max_messages: int) -> list[ReceivedMessage]:
        self._check_exists()
        lock = max(1, math.ceil(self.lock_duration))
        received: list[ReceivedMessage] = []
        now = self._clock()
        for queued in self._queue.receive_messages(
            messages_per_page=min(32, max_messages), max_messages=max_messages, visibility_timeout=lock
        ):
            envelope = json.loads(queued.content)
            message = ReceivedMessage(
                message_id=envelope["messageId"],
                body=envelope["body"],
                delivery_count=queued.dequeue_count or 1,
                enqueued_time=datetime.fromisoformat(envelope["enqueuedTimeUtc"]),
                locked_until=now + self.lock_duration,
                content_type=envelope.get("contentType", ""),
                queued=queued,
            )
            if message.delivery_count > self.max_delivery_count:
                # Its lock expired at the last allowed delivery: Service Bus has dead-lettered it already.
                self._to_dead_letter(message, MAX_DELIVERY_COUNT_EXCEEDED, "lock expired at the last delivery")
                continue
            received.append(message)
        return received

    def complete(self, message: ReceivedMessage) -> None:
        self._check_lock(message)
        try:
            self._queue.delete_message(message.queued.id, message.queued.pop_receipt)
        except ResourceNotFoundError as error:  # delivered again elsewhere: our receipt is void
            self.counters.lock_lost += 1
            raise MessageLockLost(message.message_id) from error
        self.counters.completed += 1

    def abandon(self, message: ReceivedMessage) -> None:
        self._check_lock(message)
        if message.delivery_count >= self.max_delivery_count:
            self.dead_letter(message, MAX_DELIVERY_COUNT_EXCEEDED, f"delivered {message.delivery_count} times")
            return
        try:
            self._queue.update_message(message.queued.id, message.queued.pop_receipt, visibility_timeout=0)
        except ResourceNotFoundError as error:
            self.counters.lock_lost += 1
            raise MessageLockLost(message.message_id) from error
        self.counters.abandoned += 1

    def dead_letter(self, message: ReceivedMessage, reason: str, description: str = "") -> None:
        self._check_lock(message)
        self._to_dead_letter(message, reason, description)

    def _to_dead_letter(self, message: ReceivedMessage, reason: str, description: str) -> None:
        self._dead.send_message(
            json.dumps(
                {
                    "messageId": message.message_id,
                    "body": message.body,
                    "deliveryCount": message.delivery_count,
                    "deadLetterReason": reason,
                    "deadLetterErrorDescription": description,
                }
            )
        )
        try:
            self._queue.delete_message(message.queued.id, message.queued.pop_receipt)
        except ResourceNotFoundError:
            pass
        self.counters.dead_lettered += 1

    def _check_lock(self, message: ReceivedMessage) -> None:
        if self._clock() > message.locked_until:
            self.counters.lock_lost += 1
            raise MessageLockLost(message.message_id)

    # -- inspection -------------------------------------------------------------------------------------------
    def dead_letters(self) -> list[dict]:
        return [json.loads(m.content) for m in self._dead.peek_messages(max_messages=32)]

    def peek(self, max_messages: int = 32) -> list[dict]:
        """Visible messages (envelopes), without locking them."""
        return [json.loads(m.content) for m in self._queue.peek_messages(max_messages=max_messages)]

    def approximate_count(self) -> int:
        return self._queue.get_queue_properties().approximate_message_count

    def clear(self) -> None:
        self._queue.clear_messages()


def function_message(message: ReceivedMessage) -> func.ServiceBusMessage:
    """What the Python worker hands the function for one message of a batch."""
    return FuncServiceBusMessage(
        body=message.body.encode("utf-8"),
        message_id=message.message_id,
        delivery_count=message.delivery_count,
        content_type=message.content_type,
        enqueued_time_utc=message.enqueued_time,
        locked_until=datetime.fromtimestamp(message.locked_until, UTC),
        application_properties={},
        user_properties={},
        trigger_metadata={},
    )


BatchFunction = Callable[[list[func.ServiceBusMessage]], Awaitable[object]]


@dataclass(slots=True)
class BatchRun:
    received: int = 0
    failed: bool = False
    lock_lost: int = 0


@dataclass(frozen=True, slots=True)
class ServiceBusHostSettings:
    max_message_batch_size: int = 1000  # the extension's defaults (ServiceBusOptions.cs)
    auto_complete_messages: bool = True


def service_bus_host_settings(path: Path = HOST_JSON) -> ServiceBusHostSettings:
    """host.json's ``extensions.serviceBus``, as the Functions host reads it, so the local trigger batches and
    settles as the deployed one does. A setting the stand-in does not emulate (prefetch) is refused rather
    than ignored."""
    options = host_json.read(path).get("extensions", {}).get("serviceBus", {})
    if options.get("prefetchCount", 0):
        raise ValueError("host.json sets serviceBus.prefetchCount: the local host does not emulate prefetch")
    defaults = ServiceBusHostSettings()
    return ServiceBusHostSettings(
        int(options.get("maxMessageBatchSize", defaults.max_message_batch_size)),
        bool(options.get("autoCompleteMessages", defaults.auto_complete_messages)),
    )


class ServiceBusBatchTrigger:
    """The extension's listener for a ``cardinality=many`` function."""

    def __init__(
        self, queue: LocalServiceBusQueue, function: BatchFunction, max_batch_size: int = 50, auto_complete: bool = True
    ) -> None:
        """``auto_complete``: host.json's ``autoCompleteMessages``. Off, a batch that returns is not settled
        at all (its locks expire, it comes back, and is dead-lettered at the max delivery count); a batch
        that raises is abandoned either way ("For failed executions, we abandon the messages regardless of
        the autoCompleteMessages configuration": the extension's ServiceBusListener)."""
        self.queue = queue
        self.function = function
        self.max_batch_size = max_batch_size
        self.auto_complete = auto_complete

    async def run_once(self) -> BatchRun:
        # Storage calls run in the calling thread (each register instance has its own): executor threads
        # would be joined at interpreter exit and hold up a Ctrl+C.
        received = self.queue.receive(self.max_batch_size)
        run = BatchRun(received=len(received))
        if not received:
            return run
        try:
            await self.function([function_message(m) for m in received])
        except Exception:  # noqa: BLE001 - the host logs the failure and abandons the whole batch
            log.exception("function failed: the whole batch is abandoned")
            run.failed = True
            settle = self.queue.abandon
        else:
            if not self.auto_complete:
                return run
            settle = self.queue.complete
        for message in received:
            try:
                settle(message)
            except MessageLockLost:
                run.lock_lost += 1
                log.warning("message lock lost before settlement", extra={"message_id": message.message_id})
        return run
