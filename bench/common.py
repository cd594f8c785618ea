"""What the benchmarks share: a synthetic portal CSV of N rows, and a process's own peak memory."""

from __future__ import annotations

from pathlib import Path


def peak_rss_mib() -> float:
    """This process's own peak RSS (VmHWM). Not ru_maxrss: Linux carries a parent's into a forked child."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def generate(path: Path, rows: int, prefix: str = "BENCH", group_tag: str = "") -> None:
    """A portal-format CSV with ``rows`` distinct devices, each with a valid synthetic hardware hash."""
    from registrar.synthetic import build_hash

    with open(path, "w", newline="") as fh:
        fh.write("Device Serial Number,Windows Product ID,Hardware Hash,Group Tag,Assigned User\r\n")
        for n in range(rows):
            serial = f"{prefix}{n:08d}"
            fh.write(f"{serial},,{build_hash(serial, seed=n)},{group_tag},\r\n")


class StorageCalls:
    """Counts every storage request this process sends (Azure SDK, sync transport), by service and
    operation: ``table POST``, ``queue DELETE``, ``blob PUT``... In Azure each is a billed transaction and a
    round trip. Installed on the SDK's transport, so the product's code is measured as it is."""

    def __init__(self, ports: dict[int, str], service_bus_queue: str = "device-registrations") -> None:
        self.ports = ports  # Azurite's port -> "blob" / "queue" / "table"
        # The local host's Service Bus stand-in (shared/queue.py): in Azure these are Service Bus operations,
        # counted apart (see ServiceBusOperations), not storage transactions.
        self.stand_in = (f"/{service_bus_queue}/", f"/{service_bus_queue}-deadletter/", "/sbdedup")
        # The Functions host's own blob-trigger queue (it polls it in Azure too, not the app's code).
        self.host_queues = ("/azure-webjobs-blobtrigger-", "/webjobs-blobtrigger-poison")
        self.counts: dict[str, int] = {}
        self.paused = False  # the benchmark's own progress checks are not the product's calls
        self._original = None

    def __enter__(self) -> StorageCalls:
        from urllib.parse import urlsplit

        from azure.core.pipeline.transport import RequestsTransport

        self._original = original = RequestsTransport.send
        counts, ports, calls = self.counts, self.ports, self

        def send(transport, request, **kwargs):
            if calls.paused:
                return original(transport, request, **kwargs)
            parts = urlsplit(request.url)
            service = ports.get(parts.port or 0, parts.hostname or "?")
            method = request.method
            if service == "table" and "$batch" in parts.path:
                method = "transaction"
            key = f"{service} {method}"
            if service == "blob" and method == "GET" and "comp=list" in (parts.query or ""):
                key = "local host: blob listing (stands in for Event Grid)"
            elif any(marker in parts.path for marker in calls.host_queues):
                key = f"local host: Functions host blob-trigger queue {method}"
            elif any(marker in parts.path for marker in calls.stand_in):
                key = f"local host: Service Bus stand-in {service} {method}"
            counts[key] = counts.get(key, 0) + 1
            return original(transport, request, **kwargs)

        RequestsTransport.send = send
        return self

    def __exit__(self, *exc: object) -> None:
        from azure.core.pipeline.transport import RequestsTransport

        RequestsTransport.send = self._original

    def per_device(self, devices: int) -> dict[str, float]:
        return {k: round(n / devices, 3) for k, n in sorted(self.counts.items())}

    def stand_in_per_device(self, devices: int) -> float:
        return round(sum(n for k, n in self.counts.items() if k.startswith("local host")) / devices, 2)

    def total_per_device(self, devices: int) -> float:
        """The product's own calls: not the local host's polling, which Azure does by other means."""
        own = sum(n for k, n in self.counts.items() if not k.startswith("local host"))
        return round(own / devices, 2)


class ServiceBusOperations:
    """What the local host's Service Bus stand-in would cost on Service Bus, where the product sends a
    ``ServiceBusMessageBatch`` (one operation per 256 KB, the Standard tier's batch limit: shared/queue.py),
    the trigger receives up to its batch size at once, and each message is completed (one disposition each)."""

    BATCH_BYTES = 256 * 1024

    def __init__(self) -> None:
        self.sends = 0
        self.receives = 0
        self.completes = 0
        self._originals: dict[str, object] = {}

    def __enter__(self) -> ServiceBusOperations:
        from registrar.localhost.servicebus import LocalServiceBusQueue

        ops, originals = self, self._originals
        originals.update(send=LocalServiceBusQueue.send, receive=LocalServiceBusQueue.receive)
        originals.update(complete=LocalServiceBusQueue.complete)

        def send(queue, messages, enqueue_at=None):
            size = sum(len(m.to_json()) + 200 for m in messages)  # body + properties
            ops.sends += -(-size // ops.BATCH_BYTES) if messages else 0
            return originals["send"](queue, messages, enqueue_at)

        def receive(queue, max_messages):
            received = originals["receive"](queue, max_messages)
            ops.receives += bool(received)
            return received

        def complete(queue, message):
            ops.completes += 1
            return originals["complete"](queue, message)

        LocalServiceBusQueue.send, LocalServiceBusQueue.receive = send, receive
        LocalServiceBusQueue.complete = complete
        return self

    def __exit__(self, *exc: object) -> None:
        from registrar.localhost.servicebus import LocalServiceBusQueue

        for name, original in self._originals.items():
            setattr(LocalServiceBusQueue, name, original)

    def per_device(self, devices: int) -> dict[str, float]:
        return {
            "send (batches)": round(self.sends / devices, 3),
            "receive (batches)": round(self.receives / devices, 3),
            "complete": round(self.completes / devices, 3),
            "total": round((self.sends + self.receives + self.completes) / devices, 3),
        }
