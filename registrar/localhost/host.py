"""Drive the same function code as Azure does, on Azurite and the Graph emulator.

Blob trigger -> poll the upload containers and call ``functions.ingest.main`` with a ``func.InputStream``.
Service Bus trigger -> receive from an Azurite storage queue and call ``functions.register.process`` with
``func.ServiceBusMessage`` objects, then settle as Service Bus would: delete on success, make visible again
later on retry (scheduled delivery), move to ``<queue>-poison`` at the delivery limit (dead-letter).
Timer -> call ``functions.reconcile.main`` with a ``func.TimerRequest`` on its interval.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field

import azure.functions as func
from azure.core.exceptions import ResourceExistsError
from azure.functions.blob import InputStream as BlobInputStream
from azure.functions.servicebus import ServiceBusMessage
from azure.storage.queue import QueueClient

from functions import ingest, reconcile, register
from shared.config import Settings
from shared.queue import MAX_DELIVERY_COUNT, StorageQueueSender
from shared.routing import is_report
from shared.runtime import Runtime
from shared.storage import blob_service, queue_service

log = logging.getLogger("registrar.localhost")


class LocalTimerRequest(func.TimerRequest):
    def __init__(self, past_due: bool = False) -> None:
        self._past_due = past_due

    @property
    def past_due(self) -> bool:
        return self._past_due


def service_bus_message(body: str, message_id: str, delivery_count: int) -> func.ServiceBusMessage:
    return ServiceBusMessage(
        body=body.encode("utf-8"),
        message_id=message_id,
        delivery_count=delivery_count,
        content_type="application/json",
        application_properties={},
        user_properties={},
        trigger_metadata={},
    )


@dataclass(slots=True)
class HostCounters:
    uploads: int = 0
    deliveries: int = 0
    completed: int = 0
    retried: int = 0
    dead_lettered: int = 0
    timer_runs: int = 0
    errors: list[str] = field(default_factory=list)


class LocalHost:
    def __init__(
        self,
        settings: Settings,
        *,
        visibility_timeout: int = 30,
        batch_size: int = 32,
        max_deliveries: int = MAX_DELIVERY_COUNT,
        reconcile_interval: float = 5.0,
    ) -> None:
        self.settings = settings
        queues = queue_service(settings)
        self.queue: QueueClient = queues.get_queue_client(settings.queue_name)
        self.poison: QueueClient = queues.get_queue_client(settings.queue_name + "-poison")
        for client in (self.queue, self.poison):
            try:
                client.create_queue()
            except ResourceExistsError:
                pass
        self.runtime = Runtime.build(settings, sender=StorageQueueSender(queues.get_queue_client(settings.queue_name)))
        self.blobs = blob_service(settings)
        for container in settings.containers:
            try:
                self.blobs.create_container(container)
            except ResourceExistsError:
                pass
        self.visibility_timeout = visibility_timeout
        self.batch_size = batch_size
        self.max_deliveries = max_deliveries
        self.reconcile_interval = reconcile_interval
        self.counters = HostCounters()
        self._seen: set[tuple[str, str, str]] = set()
        self._last_timer = 0.0

    # -- blob trigger -----------------------------------------------------------------------------------------
    def poll_uploads(self) -> int:
        processed = 0
        for container in self.settings.containers:
            client = self.blobs.get_container_client(container)
            for blob in client.list_blobs():
                key = (container, blob.name, blob.etag)
                if is_report(blob.name) or key in self._seen:
                    continue
                data = client.download_blob(blob.name).readall() if blob.size <= self.settings.max_upload_bytes else b""
                stream = BlobInputStream(
                    data=data,
                    name=f"{container}/{blob.name}",
                    length=blob.size,
                    uri=f"{client.url}/{blob.name}",
                    blob_properties={"ETag": blob.etag},
                )
                ingest.main(stream, self.runtime)
                self._seen.add(key)
                processed += 1
        self.counters.uploads += processed
        return processed

    # -- Service Bus trigger ----------------------------------------------------------------------------------
    async def drain_queue(self) -> int:
        received = list(
            self.queue.receive_messages(
                messages_per_page=self.batch_size,
                max_messages=self.batch_size,
                visibility_timeout=self.visibility_timeout,
            )
        )
        if not received:
            return 0
        messages = [service_bus_message(m.content, m.id, m.dequeue_count or 1) for m in received]
        settlements = await register.process(messages, self.runtime, self.max_deliveries)
        by_id = {m.id: m for m in received}
        for settlement in settlements:
            queued = by_id[settlement.delivery.message_id]
            if settlement.action == "complete":
                self.queue.delete_message(queued)
                self.counters.completed += 1
            elif settlement.action == "retry":
                delay = max(settlement.retry_after, min(2**settlement.delivery.delivery_count, 60))
                self.queue.update_message(queued, visibility_timeout=int(delay) or 1)
                self.counters.retried += 1
            else:
                self.poison.send_message(
                    json.dumps(
                        {
                            "reason": settlement.reason,
                            "deliveryCount": settlement.delivery.delivery_count,
                            "body": json.loads(settlement.delivery.body)
                            if settlement.delivery.body.startswith("{")
                            else None,
                        }
                    )
                )
                self.queue.delete_message(queued)
                self.counters.dead_lettered += 1
        self.counters.deliveries += len(received)
        return len(received)

    # -- timer trigger ----------------------------------------------------------------------------------------
    async def run_timer(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_timer < self.reconcile_interval:
            return
        self._last_timer = now
        await reconcile.main(LocalTimerRequest(), self.runtime)
        self.counters.timer_runs += 1

    async def step(self) -> None:
        """One round of every trigger: what Core Tools would do concurrently, in a fixed order."""
        await asyncio.to_thread(self.poll_uploads)
        while await self.drain_queue():
            pass
        await self.run_timer()

    async def run(self, stop: asyncio.Event, poll_interval: float = 1.0) -> None:
        while not stop.is_set():
            try:
                await self.step()
            except Exception as error:  # noqa: BLE001 - a host keeps running; the next round retries
                log.exception("local host round failed")
                self.counters.errors.append(str(error))
            try:
                await asyncio.wait_for(stop.wait(), timeout=poll_interval)
            except TimeoutError:
                pass

    def dead_letters(self) -> list[dict]:
        return [json.loads(m.content) for m in self.poison.peek_messages(max_messages=32)]
