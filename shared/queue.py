"""The registration queue behind one interface: Service Bus in Azure; locally, the local host's stand-in
on an Azurite storage queue (``registrar.localhost.servicebus``), which reproduces Service Bus's
settlement, delivery counts, scheduling and duplicate detection.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from .config import Settings
from .messages import RegistrationMessage


class MessageSender(Protocol):
    def send(self, messages: Sequence[RegistrationMessage], enqueue_at: datetime | None = None) -> None:
        """Send; with ``enqueue_at`` (UTC), the messages become visible only then (scheduled messages)."""

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Delivery:
    """One received message, whichever queue it came from."""

    body: str = field(repr=False)  # carries the hardware hash: never printed or logged
    message_id: str = ""
    delivery_count: int = 1


class ServiceBusSender:
    """Batched sends (``ServiceBusMessageBatch``): one call per ~256 KB, not one per device."""

    def __init__(self, settings: Settings, *, sender: Any = None) -> None:
        """``sender``: an ``azure.servicebus.ServiceBusSender`` already open (tests pass their own)."""
        from azure.servicebus import ServiceBusClient

        self._client: Any = None
        if sender is not None:
            self._sender = sender
            return
        if settings.servicebus_connection:
            self._client = ServiceBusClient.from_connection_string(settings.servicebus_connection)
        else:
            from azure.identity import DefaultAzureCredential

            self._client = ServiceBusClient(settings.servicebus_namespace or "", DefaultAzureCredential())
        self._sender = self._client.get_queue_sender(settings.queue_name)

    def send(self, messages: Sequence[RegistrationMessage], enqueue_at: datetime | None = None) -> None:
        from azure.servicebus import ServiceBusMessage

        batch = self._sender.create_message_batch()
        for message in messages:
            item = ServiceBusMessage(
                message.to_json(),
                message_id=message.message_id,
                content_type="application/json",
                scheduled_enqueue_time_utc=enqueue_at,
            )
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
        if self._client is not None:
            self._client.close()
