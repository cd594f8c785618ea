"""The local Service Bus stand-in settles as the Functions Service Bus extension does (docs/functions-host.md),
one behaviour per test, on a real Azurite queue."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from registrar.localhost.host import LocalHost
from registrar.localhost.servicebus import (
    HOST_JSON,
    MAX_DELIVERY_COUNT_EXCEEDED,
    SEND_TAKEOVER_SECONDS,
    LocalServiceBusQueue,
    MessageLockLost,
    MessagingEntityNotFound,
    ServiceBusBatchTrigger,
    ServiceBusHostSettings,
    service_bus_host_settings,
)
from shared.storage import queue_service, table_service

pytestmark = [pytest.mark.anyio, pytest.mark.integration]


@pytest.fixture
def bus(settings):
    def make(**options) -> LocalServiceBusQueue:
        name = f"sb-{uuid.uuid4().hex[:10]}"
        return LocalServiceBusQueue(queue_service(settings), table_service(settings), name, create=True, **options)

    return make


def send(queue: LocalServiceBusQueue, *ids: str) -> None:
    for message_id in ids:
        queue.send_raw(f'{{"id": "{message_id}"}}', message_id)


class Recorder:
    """A batch function that records what it was given and can be told to fail or to take its time."""

    def __init__(self, fail: bool = False, sleep: float = 0.0) -> None:
        self.batches: list[list[tuple[str, int]]] = []
        self.fail, self.sleep = fail, sleep

    async def __call__(self, messages) -> None:
        self.batches.append([(m.message_id, m.delivery_count) for m in messages])
        if self.sleep:
            await asyncio.sleep(self.sleep)
        if self.fail:
            raise RuntimeError("function failed")


async def test_a_batch_that_returns_is_completed_as_a_whole(bus):
    queue = bus()
    send(queue, "a", "b", "c")
    function = Recorder()
    run = await ServiceBusBatchTrigger(queue, function, max_batch_size=10).run_once()
    assert run.received == 3 and not run.failed
    assert sorted(i for i, _ in function.batches[0]) == ["a", "b", "c"]
    assert queue.counters.completed == 3 and queue.approximate_count() == 0


async def test_a_batch_that_raises_is_abandoned_as_a_whole_and_redelivered_at_once_with_count_plus_one(bus):
    queue = bus()
    send(queue, "a", "b", "c")
    function = Recorder(fail=True)
    trigger = ServiceBusBatchTrigger(queue, function, max_batch_size=10)
    first = await trigger.run_once()
    assert first.failed and queue.counters.abandoned == 3
    started = time.monotonic()
    await trigger.run_once()  # no waiting: abandon makes the messages visible immediately
    assert time.monotonic() - started < 5
    assert sorted(function.batches[1]) == [("a", 2), ("b", 2), ("c", 2)]


async def test_at_the_max_delivery_count_an_abandoned_batch_is_dead_lettered_as_max_delivery_count_exceeded(bus):
    queue = bus(max_delivery_count=3)
    send(queue, "a", "b")
    trigger = ServiceBusBatchTrigger(queue, Recorder(fail=True), max_batch_size=10)
    for _ in range(3):
        await trigger.run_once()
    assert queue.approximate_count() == 0
    dead = queue.dead_letters()
    assert sorted(d["messageId"] for d in dead) == ["a", "b"]
    assert {d["deadLetterReason"] for d in dead} == {MAX_DELIVERY_COUNT_EXCEEDED}
    assert {d["deliveryCount"] for d in dead} == {3}


async def test_duplicate_message_id_within_the_window_is_accepted_and_dropped(bus):
    queue = bus(duplicate_window=2.0)
    assert queue.send_raw("{}", "same") is True
    assert queue.send_raw("{}", "same") is False  # the send succeeds; the copy is dropped
    assert queue.send_raw("{}", "other") is True
    assert queue.approximate_count() == 2 and queue.counters.duplicates_dropped == 1
    await asyncio.sleep(2.2)
    assert queue.send_raw("{}", "same") is True  # outside the window it is a new message


async def test_a_message_id_longer_than_service_bus_allows_is_refused_before_sending(bus):
    queue = bus()
    with pytest.raises(ValueError, match="128"):  # Service Bus quotas: a message ID is at most 128 characters
        queue.send_raw("{}", "x" * 129)
    assert queue.send_raw("{}", "x" * 128) is True and queue.approximate_count() == 1


async def test_a_batch_that_runs_past_the_lock_duration_loses_its_locks_and_comes_back(bus):
    queue = bus(lock_duration=1.0)
    send(queue, "a", "b")
    function = Recorder(sleep=1.5)
    run = await ServiceBusBatchTrigger(queue, function, max_batch_size=10).run_once()
    assert run.lock_lost == 2 and queue.counters.completed == 0
    again = await ServiceBusBatchTrigger(queue, Recorder(), max_batch_size=10).run_once()
    assert again.received == 2  # completion failed, so the messages are delivered again


async def test_settling_after_the_lock_expired_raises_message_lock_lost(bus):
    queue = bus(lock_duration=1.0)
    send(queue, "a")
    (message,) = queue.receive(1)
    await asyncio.sleep(1.2)
    with pytest.raises(MessageLockLost):
        queue.complete(message)
    with pytest.raises(MessageLockLost):
        queue.abandon(message)


async def test_a_lock_that_expires_at_the_last_delivery_dead_letters_the_message(bus):
    queue = bus(lock_duration=1.0, max_delivery_count=1)
    send(queue, "a")
    assert len(queue.receive(1)) == 1  # delivery 1 of 1, never settled
    await asyncio.sleep(1.3)
    assert queue.receive(1) == []
    (dead,) = queue.dead_letters()
    assert (dead["messageId"], dead["deadLetterReason"]) == ("a", MAX_DELIVERY_COUNT_EXCEEDED)


async def test_a_scheduled_message_is_invisible_until_its_enqueue_time(bus):
    queue = bus()
    queue.send_raw("{}", "later", enqueue_at=datetime.now(UTC) + timedelta(seconds=2))
    assert queue.receive(1) == []
    await asyncio.sleep(2.5)
    (message,) = queue.receive(1)
    assert message.message_id == "later" and message.delivery_count == 1


async def test_a_queue_that_was_never_created_is_refused_as_in_azure(settings):
    """Bicep creates the queue in Azure; a wrong REGISTRATION_QUEUE there fails with MessagingEntityNotFound
    rather than creating a queue nobody listens to."""
    missing = LocalServiceBusQueue(queue_service(settings), table_service(settings), f"sb-{uuid.uuid4().hex[:10]}")
    with pytest.raises(MessagingEntityNotFound, match="does not exist"):
        missing.send_raw("{}", "one")
    with pytest.raises(MessagingEntityNotFound):
        missing.receive(1)


async def test_without_auto_complete_a_batch_that_returns_is_not_settled_and_comes_back(bus):
    """autoCompleteMessages false: success settles nothing (the extension completes only "if
    (_autoCompleteMessages && result.Succeeded)"), so the messages return when their locks expire."""
    queue = bus(lock_duration=1.0)
    send(queue, "m1", "m2")
    first = await ServiceBusBatchTrigger(queue, Recorder(), max_batch_size=10, auto_complete=False).run_once()
    assert first.received == 2 and queue.counters.completed == 0
    time.sleep(1.3)
    again = Recorder()
    await ServiceBusBatchTrigger(queue, again, max_batch_size=10).run_once()
    assert sorted(again.batches[0]) == [("m1", 2), ("m2", 2)]


def test_the_local_host_batches_and_settles_as_host_json_says(settings, tmp_path):
    with open(HOST_JSON) as fh:
        options = json.load(fh)["extensions"]["serviceBus"]
    assert LocalHost(settings).register_trigger.max_batch_size == options["maxMessageBatchSize"]
    bare = tmp_path / "host.json"
    bare.write_text(json.dumps({"version": "2.0"}))
    assert service_bus_host_settings(bare) == ServiceBusHostSettings(1000, True)  # the extension's defaults
    bare.write_text(json.dumps({"extensions": {"serviceBus": {"prefetchCount": 10}}}))
    with pytest.raises(ValueError, match="prefetch"):
        service_bus_host_settings(bare)


async def test_a_dropped_duplicate_keeps_its_message_id_in_the_window(bus):
    queue = bus(duplicate_window=2.0)
    assert queue.send_raw("{}", "same") is True
    await asyncio.sleep(1.2)
    assert queue.send_raw("{}", "same") is False  # dropped, and the window starts again from here
    await asyncio.sleep(1.2)
    assert queue.send_raw("{}", "same") is False


async def test_a_sender_that_died_between_claim_and_send_does_not_block_the_resend(bus, monkeypatch):
    """Service Bus records a MessageId and enqueues in one step: a send that failed recorded nothing, and
    its resend goes through. Here the claim outlives the failed send, so it is taken over once stale."""
    now = [1000.0]
    queue = bus(clock=lambda: now[0])
    real_send = queue._queue.send_message
    monkeypatch.setattr(queue._queue, "send_message", lambda *a, **k: (_ for _ in ()).throw(OSError("died")))
    with pytest.raises(OSError):
        queue.send_raw("{}", "crashed")
    monkeypatch.setattr(queue._queue, "send_message", real_send)
    now[0] += SEND_TAKEOVER_SECONDS + 1
    assert queue.send_raw("{}", "crashed") is True and queue.approximate_count() == 1
    assert queue.send_raw("{}", "crashed") is False  # and from then on it is a duplicate
