"""Drive the same function code as Azure does, on Azurite and the Graph emulator.

Blob trigger -> ``blob_trigger.EventGridBlobTrigger`` (the blob extension's queue, 5 tries, poison queue)
calls ``functions.ingest.main`` with a ``BlobClient``.
Service Bus trigger -> ``servicebus.ServiceBusBatchTrigger`` over ``servicebus.LocalServiceBusQueue`` (an
Azurite storage queue with Service Bus's settlement, delivery counts, lock expiry, scheduled messages,
duplicate detection and dead-lettering) calls ``functions.register.main`` with a batch.
Timer -> call ``functions.reconcile.main`` with a ``func.TimerRequest`` on its interval.

``step`` runs each trigger once, in order (tests); ``run`` runs them concurrently like separate
instances: a blob poller, a timer and ``workers`` register instances, each with its own clients,
sharing only storage (state, queue, write budget) and Graph.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import azure.functions as func
from azure.core.exceptions import ResourceExistsError
from azure.storage.blob import BlobClient

from functions import ingest, reconcile, register
from shared.config import Settings
from shared.runtime import Runtime
from shared.storage import blob_service, host_queue_service, queue_service, table_service

from . import host_json
from .blob_trigger import EventGridBlobTrigger, UploadEvents, ingest_function_name
from .servicebus import LocalServiceBusQueue, ServiceBusBatchTrigger, service_bus_host_settings

log = logging.getLogger("registrar.localhost")


class LocalTimerRequest(func.TimerRequest):
    def __init__(self, past_due: bool = False) -> None:
        self._past_due = past_due

    @property
    def past_due(self) -> bool:
        return self._past_due


class FunctionTimedOut(Exception):
    """An invocation ran past host.json's functionTimeout."""


@dataclass(slots=True)
class HostCounters:
    uploads: int = 0
    deliveries: int = 0
    batches: int = 0
    failed_batches: int = 0  # the function raised: the whole batch was abandoned
    batches_by_instance: dict[str, int] = field(default_factory=dict)
    timer_runs: int = 0
    errors: list[str] = field(default_factory=list)


class LocalHost:
    def __init__(
        self,
        settings: Settings,
        *,
        batch_size: int | None = None,
        max_delivery_count: int | None = None,
        reconcile_interval: float = 5.0,
        function_timeout: float | None = None,
    ) -> None:
        """``function_timeout``: host.json's ``functionTimeout`` unless given (tests shorten it)."""
        self.settings = settings
        self.function_timeout = function_timeout or host_json.function_timeout_seconds()
        # The queue's maxDeliveryCount comes from the same setting Bicep gives the app (one source).
        self.max_delivery_count = max_delivery_count or settings.max_delivery_count
        self.bus = self._queue()
        self.runtime = Runtime.build(settings, sender=self.bus)
        self.blobs = blob_service(settings)
        for container in [*settings.containers, settings.upload_deadletter_container]:
            try:
                self.blobs.create_container(container)
            except ResourceExistsError:
                pass
        self.service_bus = service_bus_host_settings()
        self.batch_size = batch_size or self.service_bus.max_message_batch_size
        self.register_trigger = self._register_trigger(self.runtime, self.bus)
        self.reconcile_interval = reconcile_interval
        self.counters = HostCounters()
        self.blob_trigger = EventGridBlobTrigger(
            host_queue_service(settings),  # the host queue: AzureWebJobsStorage
            self.blobs,
            {ingest_function_name(c): self._ingest for c in settings.containers},
            queue_name=f"azure-webjobs-blobtrigger-{settings.table_prefix.lower()}",
            poison_queues=queue_service(settings),  # the poison queue: the triggering blob's account
        )
        # Both Event Grid subscriptions per container: the webhook and the journal the reconcile sweep drains.
        journal = queue_service(settings).get_queue_client(settings.upload_events_queue)
        self.upload_events = UploadEvents(self.blobs, settings.containers, journal)
        self._last_timer = 0.0

    # -- blob trigger -----------------------------------------------------------------------------------------
    def poll_uploads(self) -> int:
        """Blob trigger (Event Grid source), as the blob extension runs it: see blob_trigger.py."""
        self.upload_events.publish_new(self.blob_trigger)
        processed = len(self.blob_trigger.run_once().succeeded)
        self.counters.uploads += processed
        return processed

    def _ingest(self, client: BlobClient) -> None:
        started = time.monotonic()
        ingest.main(client, self.runtime)
        self._within_timeout("ingest", started)

    def _within_timeout(self, function: str, started: float) -> None:
        """Azure stops an invocation at ``functionTimeout`` and counts it as failed. The local host cannot stop
        Python code halfway, so it fails the invocation when it ends late: its trigger then retries, abandons
        or poisons it as Azure's would, and the log says why."""
        elapsed = time.monotonic() - started
        if elapsed > self.function_timeout:
            message = (
                f"{function} ran {elapsed:.1f} s, past host.json's functionTimeout of {self.function_timeout:.0f} s:"
                " Azure would have stopped it"
            )
            log.error(message)
            self.counters.errors.append(message)
            raise FunctionTimedOut(message)

    # -- Service Bus trigger ----------------------------------------------------------------------------------
    def _queue(self) -> LocalServiceBusQueue:
        """The registration queue with the settings Bicep gives the real one (lock, window, deliveries)."""
        return LocalServiceBusQueue(
            queue_service(self.settings),
            table_service(self.settings),
            self.settings.queue_name,
            lock_duration=self.settings.lock_duration_seconds,
            max_delivery_count=self.max_delivery_count,
            duplicate_window=self.settings.duplicate_window_seconds,
            create=True,  # the local stand-in for Bicep's queue, as the containers above
        )

    def _register_trigger(self, rt: Runtime, bus: LocalServiceBusQueue) -> ServiceBusBatchTrigger:
        async def invoke(messages: list[func.ServiceBusMessage]) -> object:
            started = time.monotonic()
            outcomes = await register.main(messages, rt)
            self._within_timeout("register", started)
            return outcomes

        return ServiceBusBatchTrigger(bus, invoke, self.batch_size, self.service_bus.auto_complete_messages)

    async def drain_queue(self) -> int:
        """One batch through the register function, settled as the extension settles it."""
        run = await self.register_trigger.run_once()
        if run.received:
            self.counters.batches += 1
            self.counters.deliveries += run.received
            self.counters.failed_batches += run.failed
        return run.received

    def dead_letters(self) -> list[dict]:
        return self.bus.dead_letters()

    # -- timer trigger ----------------------------------------------------------------------------------------
    async def run_timer(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_timer < self.reconcile_interval:
            return
        self._last_timer = now
        await reconcile.main(LocalTimerRequest(), self.runtime)
        self.counters.timer_runs += 1
        self._within_timeout("reconcile", now)

    async def step(self) -> None:
        """One round of every trigger: what Core Tools would do concurrently, in a fixed order."""
        await asyncio.to_thread(self.poll_uploads)
        while await self.drain_queue():
            pass
        await self.run_timer()

    async def run(
        self, stop: asyncio.Event, poll_interval: float = 1.0, workers: int = 1, stop_grace: float = 0.5
    ) -> None:
        """Every trigger at once, like instances of a function app: an upload poller, the timer and
        ``workers`` register instances, each in its own thread with its own clients, until ``stop``."""
        halt = threading.Event()
        loops: list[tuple[str, Callable[[], Awaitable[None]]]] = [
            ("uploads", lambda: self._every(halt, poll_interval, self._poll_once)),
            ("timer", lambda: self._every(halt, poll_interval, self._timer_instance())),
        ]
        loops += [(f"register-{i + 1}", lambda: self._register_instance(halt, poll_interval)) for i in range(workers)]
        threads = [threading.Thread(target=asyncio.run, args=(loop(),), name=name, daemon=True) for name, loop in loops]
        for thread in threads:
            thread.start()
        try:
            await stop.wait()
        finally:
            halt.set()
            # Give work in flight a moment; what does not finish is not lost: its lock expires and the
            # batch is delivered again, like an instance that scales in.
            deadline = time.monotonic() + stop_grace
            for thread in threads:
                await asyncio.to_thread(thread.join, max(0.0, deadline - time.monotonic()))

    async def _poll_once(self) -> None:
        # Called in the upload poller's own thread: blocking it holds up nothing. (An executor thread would
        # not: Python joins those at exit, so Ctrl+C would wait for a whole upload to finish.)
        self.poll_uploads()

    def _timer_instance(self) -> Callable[[], Awaitable[None]]:
        rt = Runtime.build(self.settings, sender=self._queue())
        last = [0.0]

        async def tick() -> None:
            if time.monotonic() - last[0] >= self.reconcile_interval:
                last[0] = time.monotonic()
                await reconcile.main(LocalTimerRequest(), rt)
                self.counters.timer_runs += 1
                self._within_timeout("reconcile", last[0])

        return tick

    async def _every(self, halt: threading.Event, interval: float, work: Callable[[], Awaitable[None]]) -> None:
        while not halt.is_set():
            try:
                await work()
            except Exception as error:  # noqa: BLE001 - a host keeps running; the next round retries
                if halt.is_set():
                    return  # stopping: storage may be gone already
                log.exception("local host trigger failed")
                self.counters.errors.append(str(error))
            halt.wait(interval)  # this thread runs only this loop: blocking here holds up nothing else

    async def _register_instance(self, halt: threading.Event, idle_wait: float) -> None:
        bus = self._queue()
        trigger = self._register_trigger(Runtime.build(self.settings, sender=bus), bus)
        while not halt.is_set():
            try:
                run = await trigger.run_once()
            except Exception as error:  # noqa: BLE001 - storage unreachable: try again shortly
                if halt.is_set():
                    return
                log.exception("register instance failed to receive")
                self.counters.errors.append(str(error))
                run = None
            if run and run.received:
                name = threading.current_thread().name
                self.counters.batches_by_instance[name] = self.counters.batches_by_instance.get(name, 0) + 1
                self.counters.batches += 1
                self.counters.deliveries += run.received
                self.counters.failed_batches += run.failed
            else:
                halt.wait(idle_wait)
