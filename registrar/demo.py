"""``make demo``: the whole pipeline on the bundled samples, in one command, in under two minutes.

Starts Azurite and the Graph emulator on free ports, uploads the sample CSVs the way admins and a partner
would, runs the same function code through the local host until every accepted device reaches a final
state, prints the result, and stops everything it started.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from functions import reconcile
from shared.config import Settings, load_settings
from shared.logs import configure_json_logging
from shared.states import FINAL_FOR_DEMO, REGISTERED, DeviceState
from shared.storage import blob_service

from .emulators.graph import EmulatorConfig, EmulatorServer
from .emulators.graph.server import EmulatorControl
from .localhost.azurite import Azurite
from .localhost.environment import DEFAULT_PROFILES, local_env
from .localhost.host import LocalHost, LocalTimerRequest
from .localhost.http import PortalFront
from .samples import ALREADY_REGISTERED_SERIAL, OTHER_ORG_SERIAL, SAMPLES
from .status_view import device_rows, print_status, state_counts


def sample_uploads(root: Path = SAMPLES) -> list[tuple[str, str, Path]]:
    """(container, blob name, file): ``uploads/<profile>/f`` and ``partners/<id>/<profile>/f``."""
    uploads = []
    for path in sorted(root.rglob("*.csv")):
        parts = path.relative_to(root).parts
        if parts[0] == "uploads" and len(parts) == 3:
            uploads.append(("device-uploads", f"{parts[1]}/{parts[2]}", path))
        elif parts[0] == "partners" and len(parts) == 4:
            uploads.append((f"partner-{parts[1]}", f"{parts[2]}/{parts[3]}", path))
    return uploads


async def run_demo(console: Console, timeout: float, serve: bool = False) -> int:
    started = time.monotonic()
    log_path = Path("build/demo/registrar.log")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    configure_json_logging(log_path.open("w", encoding="utf-8"))
    console.print(f"structured logs (JSON lines) go to {log_path}")
    graph_config = EmulatorConfig(import_processing_seconds=3, entra_delay_seconds=2)
    with Azurite() as storage, EmulatorServer(graph_config) as graph:
        console.print(f"Azurite on ports {storage.ports}; Graph emulator at {graph.url}")
        settings = load_settings(local_env(storage.connection_string, graph.url, DEFAULT_PROFILES))
        control = graph.control()
        control.seed(
            otherTenantSerials=[OTHER_ORG_SERIAL],
            devices=[{"serial": ALREADY_REGISTERED_SERIAL, "manufacturer": "Contoso Devices"}],
            groups=[
                {"id": p.group_id, "displayName": f"Autopilot {name}"} for name, p in settings.profiles.profiles.items()
            ],
        )
        console.print(
            f"seeded: {OTHER_ORG_SERIAL} belongs to another organisation; "
            f"{ALREADY_REGISTERED_SERIAL} is already registered in this tenant"
        )
        host = LocalHost(settings, reconcile_interval=1.0)
        front = PortalFront(settings).start()
        console.print(f"portal: {front.url} (development sign-in; the devices appear as they register)")
        blobs = blob_service(settings)
        for container, name, path in sample_uploads():
            blobs.get_blob_client(container, name).upload_blob(path.read_bytes(), overwrite=True)
            console.print(f"uploaded {path.relative_to(SAMPLES.parent)} -> {container}/{name}")
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            task = progress.add_task("registering", total=None)
            while True:
                await host.step()
                devices = device_rows(host.runtime.store)
                final = sum(DeviceState(d.state) in FINAL_FOR_DEMO for d in devices)
                counts = ", ".join(f"{n} {s}" for s, n in sorted(state_counts(devices).items()))
                progress.update(task, total=len(devices), completed=final, description=counts or "ingesting")
                if devices and final == len(devices) and host.counters.uploads >= len(sample_uploads()):
                    break
                if time.monotonic() - started > timeout:
                    console.print("[red]demo timed out before every device reached a final state[/]")
                    print_status(host.runtime.store, console)
                    return 1
                await asyncio.sleep(0.5)
        await _after_registration(console, host, control, settings)
        print_status(host.runtime.store, console)
        calls = control.counters()["requests"]
        imports = sum(n for k, n in calls.items() if k.startswith("POST importedIdentities.import"))
        registered = sum(DeviceState(d.state) in REGISTERED for d in device_rows(host.runtime.store))
        console.print(
            f"Graph import calls: {imports} for {registered} registered devices; "
            f"dead-lettered messages: {host.bus.counters.dead_lettered}; "
            f"wall time {time.monotonic() - started:.1f} s"
        )
        _show_portal(console, front, serve)
        front.stop()
        control.close()
    return 0


def _show_portal(console: Console, front: PortalFront, serve: bool) -> None:
    """Read the portal's first Devices page as an administrator, the way the page does; then keep the
    portal up until Ctrl+C when asked (``make demo`` at a terminal)."""
    import httpx

    with httpx.Client(base_url=front.origin) as client:
        client.post("/.auth/login/dev", data={"as": "admin", "name": "demo-admin"})
        page = client.get("/api/portal/api/devices", params={"top": "100"}).json()
    shown = page.get("count", 0)
    console.print(f"portal: {front.url} shows {shown} devices on its Devices page (sign in as Administrator)")
    if not serve:
        return
    console.print("the portal stays up until Ctrl+C")
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        console.print("portal stopped")


async def _reconcile(host: LocalHost):
    return await reconcile.main(LocalTimerRequest(), host.runtime)


async def _after_registration(console: Console, host: LocalHost, control: EmulatorControl, settings: Settings) -> None:
    """After registration: users enroll, someone tampers with groups and a tag, and the timer repairs it."""
    added = 0
    synced = False
    for _ in range(20):  # Entra objects appear a little after registration (eventual consistency)
        run = await _reconcile(host)
        added += run.fleet.members_added
        synced = synced or run.fleet.synced
        if run.fleet.entra_missing == 0:
            break
        await asyncio.sleep(0.5)
    if run.fleet.entra_missing:
        console.print(
            f"group membership: {run.fleet.entra_missing} Entra objects not visible yet; "
            f"the next run adds them ({added} added so far)"
        )
    else:
        console.print(f"group membership settled: every registered device is in its profile group ({added} added now)")
    sync_time = control.state()["lastSyncDateTime"]
    if synced or not sync_time.startswith("0001"):
        # At most once per 10 minutes (Intune answers 429 sooner): the registrations are in one sync.
        console.print(f"Autopilot sync requested (POST /beta/deviceManagement/windowsAutopilotSettings/sync, {sync_time})")
    ready = [d for d in device_rows(host.runtime.store) if DeviceState(d.state) == DeviceState.READY]
    standard = [d.serial for d in ready if d.profile == "standard"]
    enrolled = standard[:4]
    for serial in enrolled:
        control.enroll(serial)
    console.print(f"simulated: users enrolled {', '.join(enrolled)}")
    standard_group = settings.profiles.profiles["standard"].group_id
    kiosk_group = settings.profiles.profiles["kiosk"].group_id
    victim, intruder, retagged = standard[0], standard[1], standard[2]
    control.change_membership(standard_group, victim, "remove")
    control.change_membership(kiosk_group, intruder, "add")
    record = next(d for d in control.state()["devices"] if d["serialNumber"] == retagged)
    await host.runtime.directory.update_group_tag(record["id"], "Tampered")
    console.print(
        f"simulated: {victim} removed from its profile group, {intruder} added to the kiosk group, "
        f"{retagged}'s group tag changed to 'Tampered'"
    )
    run = await _reconcile(host)
    active = sum(DeviceState(d.state) == DeviceState.ACTIVE for d in device_rows(host.runtime.store))
    console.print(
        f"reconcile repaired it: {run.fleet.members_added} membership restored, "
        f"{run.fleet.members_removed} conflicting membership removed, {run.fleet.tags_fixed} group tag "
        f"restored; {active} devices Active"
    )


def cmd_demo(args: argparse.Namespace) -> int:
    console = Console()
    if not console.is_terminal:
        console = Console(width=160)  # logs and CI: keep rows readable
    serve = args.serve if args.serve is not None else sys.stdin.isatty()
    return asyncio.run(run_demo(console, args.timeout, serve))


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("demo", help="run the whole pipeline on the bundled samples (Azurite + Graph emulator)")
    parser.add_argument(
        "--timeout", type=float, default=110.0, help="seconds the demo waits for its devices to settle (default 110)"
    )
    parser.add_argument(
        "--serve",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="keep the portal up after the demo until Ctrl+C (default: when run at a terminal)",
    )
    parser.set_defaults(handler=cmd_demo)
