"""End-to-end throughput: N devices through the local host, Azurite and the Graph emulator with its
throttle budget on. Prints figures (never asserts) and writes them to bench/results/e2e-<N>.json.

The product's run ends when the job is done, not when devices are "Ready for user": every device Ready,
in its profile group, and every processed import record deleted ("settled").
``--compare`` also replays the anchors (bench/anchors.py: what Get-WindowsAutoPilotInfo -Online and
WindowsAutopilotIntune do) on fresh emulators with the same settings and prints the three side by side.

Usage: python bench/e2e.py [--devices 2000] [--batch 50] [--compare]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import ServiceBusOperations, StorageCalls  # noqa: E402
from registrar.emulators.graph import EmulatorConfig, EmulatorServer  # noqa: E402
from registrar.localhost.azurite import Azurite  # noqa: E402
from registrar.localhost.environment import DEFAULT_PROFILES, local_env  # noqa: E402
from registrar.localhost.host import LocalHost  # noqa: E402
from registrar.synthetic import PORTAL_HEADER, build_hash  # noqa: E402
from shared.config import load_settings  # noqa: E402
from shared.states import FINAL_FOR_DEMO, DeviceState  # noqa: E402
from shared.storage import blob_service  # noqa: E402

WRITE_ROUTES = ("POST", "DELETE", "PATCH")


def csv_for(count: int, chunk: int = 500) -> list[bytes]:
    files = []
    for start in range(0, count, chunk):
        lines = [",".join(PORTAL_HEADER)]
        for n in range(start, min(count, start + chunk)):
            serial = f"E2E{n:07d}"
            lines.append(f"{serial},,{build_hash(serial, seed=n)},,")
        files.append(("\r\n".join(lines) + "\r\n").encode())
    return files


def emulator_config() -> EmulatorConfig:
    return EmulatorConfig(import_processing_seconds=5, entra_delay_seconds=2, page_size=500)


def progress(control, group_id: str) -> tuple[bool, bool]:
    """(every device in its group, no import record left)."""
    state = control.state()
    members = next((set(g["members"]) for g in state["groups"] if g["id"] == group_id), set())
    entra_ids = {e["deviceId"]: e["id"] for e in state["entra"]}
    in_group = all(entra_ids.get(d.get("azureActiveDirectoryDeviceId")) in members for d in state["devices"])
    return in_group, not state["imports"]


async def run(
    devices: int,
    batch: int,
    reconcile_seconds: float = 10.0,
    fleet_check_seconds: float = 1800.0,
    stop_when_in_group: bool = False,
) -> dict:
    config = emulator_config()
    with Azurite() as storage, EmulatorServer(config) as graph:
        env = local_env(storage.connection_string, graph.url, DEFAULT_PROFILES)
        env["FLEET_CHECK_SECONDS"] = f"{fleet_check_seconds:g}"  # Azure's (Bicep) unless told otherwise
        # Clean-up until shortly before the next run, as in Azure (240 s of a 5-minute timer): the bench's
        # host runs its triggers one after another, so a longer clean-up would hold up its registrations.
        env["RECONCILE_CLEANUP_SECONDS"] = f"{reconcile_seconds * 0.8:g}"
        settings = load_settings(env)
        control = graph.control()
        control.seed(groups=[{"id": p.group_id, "displayName": n} for n, p in settings.profiles.profiles.items()])
        calls = StorageCalls(
            {port: service for service, port in storage.ports.items()}, settings.queue_name
        ).__enter__()
        bus = ServiceBusOperations().__enter__()
        host = LocalHost(settings, batch_size=batch, reconcile_interval=reconcile_seconds)
        files = csv_for(devices)
        started = time.monotonic()
        blobs = blob_service(settings)
        for index, data in enumerate(files):
            blobs.get_blob_client("device-uploads", f"standard/bench-{index:03d}.csv").upload_blob(data)
        last_check = 0.0
        ready_at = 0.0
        in_group_at = 0.0
        group = settings.profiles.profiles["standard"].group_id
        while True:
            await host.step()
            if time.monotonic() - last_check < 5:  # counting all devices is itself a full scan
                continue
            last_check = time.monotonic()
            calls.paused = True
            states = Counter(d.state for d in host.runtime.store.all_devices())
            calls.paused = False
            done = sum(n for s, n in states.items() if DeviceState(s) in FINAL_FOR_DEMO)
            if done >= devices and not ready_at:
                ready_at = time.monotonic() - started
            if ready_at:
                in_group, cleared = progress(control, group)
                if in_group and not in_group_at:
                    in_group_at = time.monotonic() - started
                if in_group and (cleared or stop_when_in_group):
                    break
            if time.monotonic() - started > 3600:
                break
            await asyncio.sleep(0.2)
        wall = time.monotonic() - started
        calls.__exit__()
        bus.__exit__()
        counters = control.counters()
        routes: Counter[str] = Counter()
        writes = 0
        for key, count in counters["requests"].items():
            if key.count(" ") != 2:
                continue  # the "throttled" total
            method, route, status = key.split(" ")
            routes[f"{method} {route}"] += count
            if method in WRITE_ROUTES and status != "429":
                writes += count
        budget_per_second = config.throttle.app_writes / config.throttle.window_seconds
        registered = states.get(DeviceState.READY, 0)
        figures = {
            "devices": devices,
            "timer_seconds": reconcile_seconds,
            "fleet_check_seconds": fleet_check_seconds,
            "cleanup_seconds": settings.cleanup_seconds,
            "registered": registered,
            "seconds_to_ready_for_user": round(ready_at, 1),
            "seconds_to_all_in_group": round(in_group_at, 1),
            "seconds_to_settled": round(wall, 1) if not stop_when_in_group else "not waited for (--stop-when-in-group)",
            "import_records_left": len(control.state()["imports"]),
            # HTTP requests the product sent (a $batch or a 20-member PATCH is one) and, below, every request
            # Graph handled (batch items included: what throttling counts).
            "graph_http_calls_per_device": round(sum(counters.get("http", {}).values()) / devices, 3),
            "graph_http_calls_by_route": {
                r: round(n / devices, 4) for r, n in sorted(counters.get("http", {}).items())
            },
            "graph_calls_total_per_device": round(sum(routes.values()) / devices, 3),
            "devices_per_minute": round(registered / wall * 60),
            "graph_calls_per_device": {r: round(n / devices, 4) for r, n in sorted(routes.items())},
            "import_calls_per_device": round(routes.get("POST importedIdentities.import", 0) / devices, 4),
            "throttled_429": counters["throttled"],
            "write_budget_share": round(writes / (budget_per_second * wall), 3),
            # The product's storage calls (tables, blobs, the upload journal queue); the local host's Service
            # Bus stand-in apart, and what the same traffic costs on Service Bus.
            "storage_calls_per_device": calls.total_per_device(devices),
            "storage_calls_by_operation": calls.per_device(devices),
            "service_bus_stand_in_storage_calls_per_device": calls.stand_in_per_device(devices),
            "service_bus_operations_per_device": bus.per_device(devices),
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "states": dict(states),
        }
        control.close()
        return figures


async def run_anchor(name: str, devices: int) -> dict:
    from anchors import get_windows_autopilot_info, windows_autopilot_intune

    from shared.graph.credentials import DevelopmentCredential

    config = emulator_config()
    with EmulatorServer(config) as graph:
        control = graph.control()
        group = "11111111-1111-4111-8111-111111111111"
        control.seed(groups=[{"id": group, "displayName": "standard"}])
        rows = [(f"E2E{n:07d}", build_hash(f"E2E{n:07d}", seed=n)) for n in range(devices)]
        token = DevelopmentCredential("anchor").get_token().token
        if name == "getwindowsautopilotinfo":
            result = await get_windows_autopilot_info(graph.url + "/v1.0", token, rows, group, poll=2.0)
        else:
            result = await windows_autopilot_intune(graph.url + "/v1.0", token, rows, poll=2.0)
        control.close()
        return result.figures()


def compare_table(product: dict, anchors: list[dict]) -> str:
    """HTTP calls per device (what each tool sends; a $batch is one) and requests per device as Graph's
    throttling counts them (batch items each)."""
    header = (
        f"{'':<40}{'HTTP calls/device':>18}{'requests/device':>17}{'429s':>7}{'to Ready (s)':>14}"
        f"{'all in group (s)':>18}{'to settled (s)':>16}"
    )
    rows = [
        (
            "Autopilot Registrar",
            product.get("graph_http_calls_per_device", product["graph_calls_total_per_device"]),
            product["graph_calls_total_per_device"],
            product["throttled_429"],
            product["seconds_to_ready_for_user"],
            product.get("seconds_to_all_in_group", "-"),
            product["seconds_to_settled"],
        )
    ]
    rows += [
        (
            a["anchor"],
            a["graph_calls_per_device"],  # one request per call: the anchors batch nothing
            a["graph_calls_per_device"],
            a["throttled_429"],
            a["seconds_to_ready_for_user"],
            a["seconds_to_settled"] if "in its group" in a["settled_means"] else "never",
            a["seconds_to_settled"],
        )
        for a in anchors
    ]
    lines = [header]
    for name, http, requests, throttled, ready, in_group, settled_s in rows:
        lines.append(f"{name:<40}{http:>18}{requests:>17}{throttled:>7}{ready:>14}{in_group:>18}{settled_s:>16}")
    lines.append(
        "settled: Registrar = in group and import records deleted; "
        + "; ".join(f"{a['anchor']} = {a['settled_means']}" for a in anchors)
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--devices", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--compare", action="store_true", help="also run both anchors and print a table")
    parser.add_argument(
        "--reconcile-seconds",
        type=float,
        default=10.0,
        help="the timer's period (Azure: 5 minutes); per-run reads per device shrink as it grows",
    )
    parser.add_argument(
        "--fleet-check-seconds",
        type=float,
        default=1800.0,
        help="FLEET_CHECK_SECONDS: the full drift check's period (Azure: 1800, as Bicep sets it)",
    )
    parser.add_argument(
        "--stop-when-in-group",
        action="store_true",
        help="stop once every device is in its group, before the import records are all deleted",
    )
    parser.add_argument(
        "--anchor-only",
        choices=("getwindowsautopilotinfo", "windowsautopilotintune"),
        help="run only this anchor (long at 10,000 devices: its writes are one per device)",
    )
    args = parser.parse_args()
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    if args.anchor_only:
        sys.path.insert(0, str(ROOT / "bench"))
        anchor = asyncio.run(run_anchor(args.anchor_only, args.devices))
        (out / f"e2e-{args.devices}-{args.anchor_only}.json").write_text(json.dumps(anchor, indent=1))
        for key, value in anchor.items():
            print(f"{key:>28}: {value}")
        return
    figures = asyncio.run(
        run(args.devices, args.batch, args.reconcile_seconds, args.fleet_check_seconds, args.stop_when_in_group)
    )
    for key, value in figures.items():
        print(f"{key:>28}: {value}")
    suffix = "" if args.reconcile_seconds == 10.0 else f"-timer{args.reconcile_seconds:g}s"
    (out / f"e2e-{args.devices}{suffix}.json").write_text(json.dumps(figures, indent=1))
    if args.compare:
        sys.path.insert(0, str(ROOT / "bench"))
        anchors = [
            asyncio.run(run_anchor(n, args.devices)) for n in ("getwindowsautopilotinfo", "windowsautopilotintune")
        ]
        (out / f"e2e-{args.devices}-anchors.json").write_text(json.dumps(anchors, indent=1))
        print()
        print(compare_table(figures, anchors))


if __name__ == "__main__":
    main()
