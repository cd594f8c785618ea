"""Run the emulator on uvicorn: in a background thread for tests and the local host, or in the foreground
for ``python -m registrar graph-emulator``."""

from __future__ import annotations

import argparse
import logging
import socket
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from . import persistence
from .app import GraphEmulatorApp
from .config import EmulatorConfig


class EmulatorServer:
    """``with EmulatorServer(config) as graph:`` serves on a free loopback port; ``graph.url`` is the base."""

    def __init__(
        self,
        config: EmulatorConfig | None = None,
        port: int = 0,
        host: str = "127.0.0.1",
        state_file: Path | None = None,
    ) -> None:
        """``state_file``: keep the tenant there across restarts (loaded at start, saved at stop)."""
        self.app = GraphEmulatorApp(config)
        self.state_file = state_file
        self.restored = bool(state_file) and persistence.load(self.app.tenant, state_file)
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted connections inherit TCP_NODELAY (Linux). Without it a small reply written in two pieces
        # waits for the client's delayed ACK: about 40 ms added to every call, which distorts every timing.
        self._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._socket.bind((host, port))
        self.host, self.port = self._socket.getsockname()[:2]
        self.url = f"http://{host}:{self.port}"
        config_ = uvicorn.Config(
            self.app, log_level="critical", lifespan="off", access_log=False, timeout_graceful_shutdown=1
        )
        self._server = uvicorn.Server(config_)  # stop() waits at most 1 s for clients' open connections
        self._thread: threading.Thread | None = None

    def start(self) -> EmulatorServer:
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True, name="graph-emulator"
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the Graph emulator did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread:
            self._thread.join(timeout=10)
        self._socket.close()
        if self.state_file:  # the server thread has ended: nothing changes the tenant while it is saved
            persistence.save(self.app.tenant, self.state_file)

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def control(self) -> EmulatorControl:
        return EmulatorControl(self.url)


class EmulatorControl:
    """A small client for ``/_emulator``: scene setting and counters, over HTTP like any other client."""

    def __init__(self, url: str) -> None:
        # uvicorn closes an idle keep-alive connection after 5 s: never reuse one that old, or a call made
        # about 5 s after the previous one can meet a connection the server is closing (reset by peer).
        limits = httpx.Limits(keepalive_expiry=2.0)
        self._http = httpx.Client(base_url=url + "/_emulator", timeout=30, limits=limits)

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self._http.request(method, path, json=body)
        response.raise_for_status()
        return response.json()

    def configure(self, **settings: Any) -> dict[str, Any]:
        return self._call("PATCH", "/config", settings)

    def advance(self, seconds: float) -> None:
        self._call("POST", "/clock/advance", {"seconds": seconds})

    def seed(self, **scene: Any) -> dict[str, Any]:
        return self._call("POST", "/seed", scene)

    def user(self, upn: str, skus: list[str] | tuple[str, ...] = (), display_name: str = "") -> dict[str, Any]:
        """Seed a user holding these licences (SKU part numbers); again for the same UPN replaces them."""
        scene = {"userPrincipalName": upn, "skus": list(skus), "displayName": display_name}
        return self.seed(users=[scene])["users"][0]

    def enroll(self, serial: str, last_contacted: str | None = None) -> dict[str, Any]:
        return self._call("POST", "/enroll", {"serial": serial, "lastContactedDateTime": last_contacted})

    def change_membership(self, group_id: str, serial: str, action: str = "add") -> dict[str, Any]:
        return self._call("POST", f"/groups/{group_id}/membership", {"serial": serial, "action": action})

    def counters(self) -> dict[str, Any]:
        return self._call("GET", "/counters")

    def reset_counters(self) -> dict[str, Any]:
        return self._call("DELETE", "/counters")

    def state(self) -> dict[str, Any]:
        return self._call("GET", "/state")

    def writes(self) -> list[dict[str, Any]]:
        """Every write Graph admitted, as {"at": seconds, "app": caller}."""
        return self._call("GET", "/writes")["writes"]

    def paths(self) -> list[dict[str, str]]:
        """Every (version, method, path with ids as {id}) a client called since the last reset."""
        return self._call("GET", "/paths")["paths"]

    def reset(self) -> None:
        self._call("POST", "/reset")

    def close(self) -> None:
        self._http.close()


def cmd_graph_emulator(args: argparse.Namespace) -> int:
    config = EmulatorConfig(
        import_processing_seconds=args.processing_seconds,
        entra_delay_seconds=args.entra_delay_seconds,
        page_size=args.page_size,
    )
    config.throttle.enabled = not args.no_throttle
    config.faults.rate_503 = args.fault_rate
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    server = EmulatorServer(config, port=args.port, host=args.host)
    server._socket.listen()  # accept connections from the moment the address is printed (uvicorn takes them)
    print(f"Graph emulator on {server.url} (Graph at {server.url}/v1.0, control at {server.url}/_emulator)", flush=True)
    server._server.run(sockets=[server._socket])  # foreground until Ctrl+C
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("graph-emulator", help="run the Microsoft Graph emulator (Autopilot, Entra, groups)")
    parser.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    parser.add_argument("--processing-seconds", type=float, default=5.0, help="how long imports stay 'unknown'")
    parser.add_argument(
        "--entra-delay-seconds", type=float, default=5.0, help="how long after registration the Entra device appears"
    )
    parser.add_argument("--page-size", type=int, default=100, help="items per page of a collection (default 100)")
    parser.add_argument("--no-throttle", action="store_true", help="answer every request (no 429s)")
    parser.add_argument("--fault-rate", type=float, default=0.0, help="share of requests answered 503")
    parser.set_defaults(handler=cmd_graph_emulator)
