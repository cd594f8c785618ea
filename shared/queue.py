"""The registration queue behind one interface: Service Bus in Azure, an Azurite storage queue locally.

Both carry the same JSON bodies. Delivery counts, the delivery limit, scheduled redelivery and the
poison (dead-letter) queue are Service Bus features that the local worker reproduces on a storage queue.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from .config import Settings
from .messages import RegistrationMessage

MAX_DELIVERY_COUNT = 5


class MessageSender(Protocol):
    def send(self, messages: Sequence[RegistrationMessage]) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Delivery:
    """One received message, whichever queue it came from."""

    body: str = field(repr=False)  # carries the hardware hash: never printed or logged
    message_id: str = ""
    delivery_count: int = 1
    max_deliveries: int = MAX_DELIVERY_COUNT

    @property
    def last_attempt(self) -> bool:
        return self.delivery_count >= self.max_deliveries


@dataclass(frozen=True, slots=True)
class Settlement:
    delivery: Delivery
    action: Literal["complete", "retry", "dead_letter"]
    reason: str = ""
    retry_after: float = 0.0


class ServiceBusSender:
    def __init__(self, settings: Settings) -> None:
        from azure.servicebus import ServiceBusClient

        if settings.servicebus_connection:
            self._client = ServiceBusClient.from_connection_string(settings.servicebus_connection)
        else:
            from azure.identity import DefaultAzureCredential

            self._client = ServiceBusClient(settings.servicebus_namespace or "", DefaultAzureCredential())
        self._sender = self._client.get_queue_sender(settings.queue_name)

    def send(self, messages: Sequence[RegistrationMessage]) -> None:
        from azure.servicebus import ServiceBusMessage

        batch = self._sender.create_message_batch()
        for message in messages:
            item = ServiceBusMessage(message.to_json(), message_id=message.message_id, content_type="application/json")
            try:
                batch.add_message(item)
            except ValueError:  # batch full: send it and start another
                self._sender.send_messages(batch)
                batch = self._sender.create_message_batch()
                batch.add_message(item)
        if len(batch):
            self._sender.send_messages(batch)

    def close(self) -> None:
        self._sender.close()
        self._client.close()


class StorageQueueSender:
    """Local stand-in for Service Bus on an Azurite queue (no duplicate detection: register is idempotent)."""

    def __init__(self, queue_client) -> None:
        self._queue = queue_client

    def send(self, messages: Sequence[RegistrationMessage]) -> None:
        for message in messages:
            self._queue.send_message(message.to_json())

    def close(self) -> None:
        self._queue.close()
