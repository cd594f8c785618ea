"""The Azure send path (shared/queue.py's ServiceBusSender), which the local host replaces with its stand-in:
messages go in ServiceBusMessageBatch objects (the SDK's own, with its size accounting), a full batch is sent
and another started, and every message keeps its MessageId, content type and scheduled enqueue time."""

from datetime import UTC, datetime, timedelta

from azure.servicebus import ServiceBusMessageBatch

from shared.config import load_settings
from shared.messages import RegistrationMessage
from shared.queue import ServiceBusSender
from tests.unit.test_config import env


class RecordingBatch(ServiceBusMessageBatch):
    def __init__(self, max_size_in_bytes: int) -> None:
        super().__init__(max_size_in_bytes=max_size_in_bytes)
        self.added = []

    def add_message(self, message) -> None:
        super().add_message(message)  # raises ValueError (MessageSizeExceededError) when full
        self.added.append(message)


class FakeSender:
    """Stands for azure.servicebus.ServiceBusSender: the batch limit is the link's (256 KB on Standard)."""

    def __init__(self, max_size_in_bytes: int) -> None:
        self.max_size_in_bytes = max_size_in_bytes
        self.sent: list[RecordingBatch] = []
        self.closed = False

    def create_message_batch(self) -> RecordingBatch:
        return RecordingBatch(self.max_size_in_bytes)

    def send_messages(self, batch: RecordingBatch) -> None:
        self.sent.append(batch)

    def close(self) -> None:
        self.closed = True


def _message(n: int) -> RegistrationMessage:
    return RegistrationMessage(
        tenant="t", serial=f"SB-{n}", profile="standard", groupTag="Standard", hardwareHash="A" * 4000,
        hashDigest=f"{n:064x}", uploadId="u", file="f.csv", line=n + 2,
    )  # fmt: skip


def test_messages_go_in_batches_that_fit_and_keep_their_ids_and_schedule():
    fake = FakeSender(max_size_in_bytes=14_000)  # three 4-KB messages to a batch
    sender = ServiceBusSender(load_settings(env()), sender=fake)
    messages = [_message(n) for n in range(10)]
    at = datetime.now(UTC) + timedelta(minutes=3)
    sender.send(messages, enqueue_at=at)
    assert [len(batch.added) for batch in fake.sent] == [3, 3, 3, 1]
    sent = [m for batch in fake.sent for m in batch.added]
    assert [m.message_id for m in sent] == [m.message_id for m in messages]
    assert {m.content_type for m in sent} == {"application/json"}
    assert {m.scheduled_enqueue_time_utc for m in sent} == {at}
    assert [RegistrationMessage.from_json(str(m)) for m in sent] == messages
    sender.close()
    assert fake.closed


def test_nothing_to_send_sends_nothing():
    fake = FakeSender(max_size_in_bytes=14_000)
    ServiceBusSender(load_settings(env()), sender=fake).send([])
    assert fake.sent == []
