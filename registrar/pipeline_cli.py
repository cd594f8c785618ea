"""``dev``, ``upload`` and ``status``: the local pipeline for a person at a terminal."""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import signal
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from rich.console import Console

from shared.config import ADMIN_CONTAINER, PARTNER_CONTAINER_PREFIX, ConfigError, Settings, load_settings
from shared.ingest import upload_id_for
from shared.queue import MessageSender, ServiceBusSender
from shared.reports import report_paths
from shared.requeue import replay_failed
from shared.routing import UploadRejected, route
from shared.state import StateStore
from shared.states import DISPLAY, FINAL_FOR_DEMO, DeviceState
from shared.status_api import device_view
from shared.storage import blob_service, queue_service, table_service

from .emulators.graph import EmulatorConfig, EmulatorServer
from .localhost.azurite import Azurite
from .localhost.console_log import configure_dev_logging
from .localhost.environment import (
    ROOT,
    STATE_FILE,
    clear_dev_state,
    current_settings,
    local_env,
    local_profiles_file,
    running_dev_state,
    save_dev_state,
)
from .localhost.host import LocalHost
from .localhost.http import PortalFront
from .localhost.servicebus import LocalServiceBusQueue
from .status_view import not_registered_rows, print_status, selected_devices


def cmd_dev(args: argparse.Namespace) -> int:
    console = Console()
    data = Path(args.data) if args.data else ROOT / ".registrar"
    data.mkdir(parents=True, exist_ok=True)
    state_file = None if args.state_file == "-" else Path(args.state_file) if args.state_file else STATE_FILE
    if state_file and (other := running_dev_state(state_file)):
        console.print(f"[red]another `registrar dev` is running (process {other.get('pid')}):[/] stop it first")
        return 2
    log_file = data / "registrar.log"
    configure_dev_logging(str(log_file))
    storage = None if args.storage else Azurite(data / "azurite")
    graph = (
        None
        if args.graph
        else EmulatorServer(
            EmulatorConfig(
                import_processing_seconds=args.processing_seconds, entra_delay_seconds=args.processing_seconds
            ),
            state_file=data / "graph-tenant.pickle",  # Graph keeps what it registered, like storage does
        )
    )
    try:
        connection = args.storage or storage.start().connection_string
        graph_url = args.graph or graph.start().url
        env = local_env(connection, graph_url, Path(args.profiles) if args.profiles else local_profiles_file(data))
        try:
            settings = load_settings(env)
        except ConfigError as error:
            console.print(f"[red]configuration error:[/] {error}")
            return 2
        if graph:
            control = graph.control()
            known = {g["id"] for g in control.state()["groups"]} if graph.restored else set()
            missing = [
                {"id": p.group_id, "displayName": f"Autopilot {name}"}
                for name, p in settings.profiles.profiles.items()
                if p.group_id not in known  # a restored tenant keeps its groups and their members
            ]
            if missing:
                control.seed(groups=missing)
        endpoints = dict(re.findall(r"(\w+Endpoint)=([^;]+)", connection))
        if state_file:
            save_dev_state(env, graph_url, state_file, endpoints=endpoints, data=str(data), log=str(log_file))
        host = LocalHost(settings, reconcile_interval=args.reconcile_seconds)
        front = PortalFront(settings, port=args.portal_port).start()  # the portal, behind a development sign-in
        console.print("[bold]Autopilot Registrar local stack[/] (Ctrl+C to stop)")
        console.print(f"  portal                 {front.url}")
        for name, url in endpoints.items():
            console.print(f"  storage {name:<14} {url}")
        console.print(
            f"  Graph emulator         {graph_url}" + ("  (tenant restored)" if graph and graph.restored else "")
        )
        console.print(f"  data                   {data}")
        console.print(f"  JSON log               {log_file}")
        console.print(f"  register instances     {args.workers}")
        console.print("upload with: python -m registrar upload FILE --profile standard")
        stop = asyncio.Event()

        async def main() -> None:
            loop = asyncio.get_running_loop()
            loop.add_signal_handler(signal.SIGINT, stop.set)
            loop.add_signal_handler(signal.SIGTERM, stop.set)
            await host.run(stop, workers=args.workers)

        asyncio.run(main())
        front.stop()
        console.print("stopped; work in flight comes back to the next `registrar dev`")
        return 0
    finally:
        if state_file:
            clear_dev_state(state_file)
        # Both at once: the emulator saves the tenant while Azurite flushes its stores (Ctrl+C within 2 s).
        stopping = [threading.Thread(target=part.stop) for part in (graph, storage) if part]
        for thread in stopping:
            thread.start()
        for thread in stopping:
            thread.join()


def cmd_upload(args: argparse.Namespace) -> int:
    """Check what ingest would refuse before sending; print the upload id; with --wait, follow it."""
    settings = current_settings()
    path = Path(args.file)
    if not path.is_file():
        print(f"registrar: {path}: no such file", file=sys.stderr)
        return 2
    if args.partner and args.partner not in settings.profiles.partners:
        known = ", ".join(sorted(settings.profiles.partners)) or "none configured"
        print(f"registrar: unknown partner {args.partner!r} (partners: {known})", file=sys.stderr)
        return 2
    container = ADMIN_CONTAINER if not args.partner else PARTNER_CONTAINER_PREFIX + args.partner
    name = f"{args.profile}/{path.name}"
    try:
        route(container, name, settings.profiles)
    except UploadRejected as rejected:
        print(f"registrar: not uploaded: {rejected.reason}", file=sys.stderr)
        return 2
    sent = blob_service(settings).get_blob_client(container, name).upload_blob(path.read_bytes(), overwrite=True)
    upload_id = upload_id_for(container, name, sent["etag"])
    print(f"uploaded {path} to {container}/{name}")
    print(f"upload id {upload_id}; report: {container}/{report_paths(name, upload_id)[0]}")
    if not args.wait:
        print(f"follow it with: python -m registrar status --upload {upload_id}")
        return 0
    return _wait_for_upload(settings, upload_id, args.timeout)


def _wait_for_upload(settings: Settings, upload_id: str, timeout: float) -> int:
    """Progress until every row is final; then the rows not registered. 0 only if all rows registered."""
    store = StateStore(table_service(settings), settings.table_prefix)
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        upload = store.get_upload(upload_id)
        devices = list(store.query_devices("PartitionKey eq 'device' and upload_id eq @u", u=upload_id))
        waiting = [d for d in devices if DeviceState(d.state) not in FINAL_FOR_DEMO]
        done = upload is not None and upload.status != "processing" and not waiting
        counts = Counter(DISPLAY[DeviceState(d.state)] for d in devices)
        line = (
            "received, not read yet"
            if upload is None
            else f"{upload.status}: "
            + (", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "no devices")
        )
        if line != last:
            print(line, flush=True)
            last = line
        if done:
            break
        if time.monotonic() > deadline:
            print(f"registrar: still waiting after {timeout:.0f} s; follow with `status --upload {upload_id}`")
            return 3
        time.sleep(1.0)
    rows = store.rows_of(upload_id)
    not_registered = [r for r in rows if r.outcome != "accepted"]
    failed = [d for d in devices if d.state == DeviceState.FAILED]
    for row in not_registered:
        print(f"line {row.line}: {row.serial or '-'}: {row.outcome}: {row.code}: {row.message}")
    for device in failed:
        print(f"line {device.line}: {device.serial}: Registration failed: {device.message}")
    return 1 if not_registered or failed else 0


def cmd_status(args: argparse.Namespace) -> int:
    settings = current_settings()
    store = StateStore(table_service(settings), settings.table_prefix)
    try:
        devices = selected_devices(store, args)
    except ValueError as error:
        print(f"registrar: {error}", file=sys.stderr)
        return 2
    uploads = [args.upload] if args.upload else None
    rows = [] if args.serial or args.state else not_registered_rows(store, uploads, args.partner, args.profile)
    if args.json:
        print(json.dumps({"devices": [device_view(d) for d in devices], "rowsNotRegistered": rows}, indent=1))
    else:
        console = Console()
        print_status(store, console if console.is_terminal else Console(width=160), devices=devices, rows=rows)
    return 0


def cmd_retry(args: argparse.Namespace) -> int:
    """Give failed devices a new attempt: the admin's "retry" for a device in Registration failed."""
    settings = current_settings()
    store = StateStore(table_service(settings), settings.table_prefix)
    serials = list(args.serials)
    if args.all_failed:
        serials += [d.serial for d in store.query_devices("PartitionKey eq 'device' and state eq 'failed'")]
    if not serials:
        print("registrar: name the serials to retry, or --all-failed")
        return 2
    sender = _sender(settings)
    refused = 0
    for serial in serials:
        record = replay_failed(store, sender, settings.tenant_id, serial)
        if record is None:
            refused += 1
            known = store.get_device(serial)
            why = "no such device" if known is None else f"it is {DISPLAY[DeviceState(known.state)]}, not failed"
            print(f"{serial}: not retried ({why})")
        else:
            print(f"{serial}: queued again (attempt generation {record.generation})")
    return 1 if refused else 0


def _sender(settings: Settings) -> MessageSender:
    if settings.servicebus_connection or settings.servicebus_namespace:
        return ServiceBusSender(settings)
    return LocalServiceBusQueue(
        queue_service(settings),
        table_service(settings),
        settings.queue_name,
        duplicate_window=settings.duplicate_window_seconds,
    )


def register(sub: argparse._SubParsersAction) -> None:
    dev = sub.add_parser("dev", help="run the pipeline locally on Azurite and the Graph emulator")
    dev.add_argument(
        "--profiles", help="profiles JSON (default: <data>/profiles.json, first copied from samples/profiles.json)"
    )
    dev.add_argument("--storage", help="use this storage connection string instead of starting Azurite")
    dev.add_argument("--graph", help="use this Graph emulator URL instead of starting one")
    dev.add_argument("--data", help="where storage data and the JSON log live (default .registrar)")
    dev.add_argument(
        "--processing-seconds", type=float, default=5.0, help="how long the emulated Intune takes per import"
    )
    dev.add_argument("--reconcile-seconds", type=float, default=5.0, help="seconds between reconcile runs")
    dev.add_argument(
        "--workers", type=int, default=1, help="register instances running at once, like a scaled-out app (default 1)"
    )
    dev.add_argument(
        "--state-file", help="where upload/status find this host (default .registrar/dev.json; - for none)"
    )
    dev.add_argument("--portal-port", type=int, default=0, help="the portal's port (default: a free one)")
    dev.set_defaults(handler=cmd_dev)
    up = sub.add_parser("upload", help="upload a CSV to the right container for a profile (and partner)")
    up.add_argument("file", help="the CSV to register")
    up.add_argument("--profile", required=True, help="the device profile (decides group tag and group)")
    up.add_argument("--partner", help="upload into this partner's area, as the partner would")
    up.add_argument("--wait", action="store_true", help="follow the upload until every row is final")
    up.add_argument("--timeout", type=float, default=1800, help="seconds --wait waits at most (default 1800)")
    up.set_defaults(handler=cmd_upload)
    status = sub.add_parser("status", help="each device's state and message, and the rows not registered")
    status.add_argument("--state", help="only devices in this state, e.g. 'Registration failed' or failed")
    status.add_argument("--profile", help="only this profile's devices")
    status.add_argument("--partner", help="only this partner's devices")
    status.add_argument("--upload", help="only this upload's devices and rows (the id `upload` printed)")
    status.add_argument("--serial", help="only the device with this serial number")
    status.add_argument("--json", action="store_true", help="JSON: {devices, rowsNotRegistered}")
    status.set_defaults(handler=cmd_status)
    retry = sub.add_parser("retry", help="give failed devices a new registration attempt")
    retry.add_argument("serials", nargs="*", help="serial numbers of failed devices")
    retry.add_argument("--all-failed", action="store_true", help="every device in Registration failed")
    retry.set_defaults(handler=cmd_retry)
