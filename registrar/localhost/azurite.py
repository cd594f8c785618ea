"""Start Azurite (the npm package pinned in package.json) on free loopback ports."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Azurite's fixed development account: public, documented, and only accepted by the emulator.
ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
_LISTENING = re.compile(r"Azurite (Blob|Queue|Table) service is successfully listening at http://127\.0\.0\.1:(\d+)")
# Printed by Azurite's shutdown (dist/src/azurite.js) per service: once its afterClose has saved its LokiJS
# stores, or when closing failed (nothing more will come from that service).
_CLOSED = re.compile(r"Azurite (Blob|Queue|Table) service successfully closed|Shutdown close failed")
_SERVICES = 3


def azurite_binary() -> Path:
    binary = ROOT / "node_modules" / ".bin" / "azurite"
    if not binary.exists():
        raise RuntimeError("Azurite is not installed: run `npm ci` (make setup does it)")
    return binary


class Azurite:
    """``with Azurite() as storage:`` gives ``storage.connection_string``; data lives in ``location``
    (kept across restarts when you pass one, so a restart keeps blobs, queues and tables)."""

    def __init__(
        self, location: Path | None = None, ports: dict[str, int] | None = None, in_memory: bool = False
    ) -> None:
        """``in_memory``: Azurite's --inMemoryPersistence, for benchmarks whose tables outgrow what Azurite can
        write to disk as one JSON document (it then drops connections)."""
        self.in_memory = in_memory
        self._own_location = location is None
        self.location = Path(location or tempfile.mkdtemp(prefix="azurite-"))
        self.ports: dict[str, int] = dict(ports or {})
        self._process: subprocess.Popen[str] | None = None
        self._closed: set[str] = set()
        self._all_closed = threading.Event()

    def start(self, timeout: float = 30) -> Azurite:
        where = ["--inMemoryPersistence"] if self.in_memory else ["--location", str(self.location)]
        args = [
            str(azurite_binary()),
            *where,
            "--skipApiVersionCheck",
            "--loose",
            "--disableProductStyleUrl",
            "--blobHost",
            "127.0.0.1",
            "--queueHost",
            "127.0.0.1",
            "--tableHost",
            "127.0.0.1",
        ]
        for service in ("blob", "queue", "table"):
            args += [f"--{service}Port", str(self.ports.get(service, 0))]
        # Azurite keeps each table in one in-memory document: 200,000 devices (with their hashes) outgrow
        # node's default heap, and Azurite then drops connections. Give it room (it is a test double).
        env = {**os.environ, "NODE_OPTIONS": os.environ.get("NODE_OPTIONS", "--max-old-space-size=8192")}
        self._process = subprocess.Popen(  # noqa: S603 - fixed argv: the pinned Azurite binary
            args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT, env=env
        )
        found: dict[str, int] = {}
        deadline = time.monotonic() + timeout
        assert self._process.stdout is not None
        while len(found) < 3:
            if time.monotonic() > deadline or self._process.poll() is not None:
                self._process.kill()  # nothing to save: it never started serving
                self._process.wait()
                self._process = None
                raise RuntimeError("Azurite did not start (is Node 20 installed and `npm ci` done?)")
            line = self._process.stdout.readline()
            match = _LISTENING.search(line)
            if match:
                found[match.group(1).lower()] = int(match.group(2))
        self.ports = found
        self._closed = set()
        self._all_closed = threading.Event()
        threading.Thread(target=self._drain, args=(self._process, self._closed, self._all_closed), daemon=True).start()
        return self

    @staticmethod
    def _drain(process: subprocess.Popen[str], closed: set[str], all_closed: threading.Event) -> None:
        """Keep Azurite's pipe empty (a full pipe would stall it) and notice when each service has saved."""
        assert process.stdout is not None
        for line in process.stdout:
            match = _CLOSED.search(line)
            if match:
                closed.add(match.group(1) or f"failed {len(closed)}")
                if len(closed) >= _SERVICES:
                    all_closed.set()

    @property
    def connection_string(self) -> str:
        p = self.ports
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint=http://127.0.0.1:{p['blob']}/{ACCOUNT};"
            f"QueueEndpoint=http://127.0.0.1:{p['queue']}/{ACCOUNT};"
            f"TableEndpoint=http://127.0.0.1:{p['table']}/{ACCOUNT};"
        )

    def stop(self, save_timeout: float = 30) -> None:
        """Stop without losing anything Azurite acknowledged, as Azure Storage never does.

        Azurite's Ctrl+C: the first SIGINT refuses new requests and closes each service, which saves its
        LokiJS stores (between saves, every 5 s, writes live only in memory); it prints "successfully closed"
        per service. The process then lingers while clients hold keep-alive connections (about 10 s), so the
        second SIGINT comes as soon as all three have saved. Sending it after a fixed short grace instead lost
        up to 5 s of acknowledged writes whenever something (a queue's clean-up sweep) delayed the close: most
        likely why the soak test once found devices left Importing, their rescheduled messages sent just
        before a restart."""
        process = self._process
        if process and process.poll() is None:
            process.send_signal(signal.SIGINT)
            deadline = time.monotonic() + save_timeout
            while not self._all_closed.wait(0.05) and process.poll() is None and time.monotonic() < deadline:
                pass
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._process = None

    def restart(self) -> None:
        """Stop and start again on the same ports with the same data directory (see ``stop``)."""
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        if self._own_location:
            shutil.rmtree(self.location, ignore_errors=True)

    def __enter__(self) -> Azurite:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
