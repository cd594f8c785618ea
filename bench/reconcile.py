"""Graph calls, time and CPU of one reconcile run over N registered devices: with no drift, and with 5%
drift (half of it group memberships changed by hand, half group tags). Every run is a full check
(``FLEET_CHECK_SECONDS`` 0): every Autopilot record and every group member read and compared, the pass
that must fit in the function's timeout at 100,000 devices (issue 15, item 5). CPU is the reconcile's own
thread (``time.thread_time``): the Graph emulator and Azurite's client threads are not counted. Prints
figures; writes bench/results/reconcile-<N>.json. Azurite keeps its tables in memory (on disk it drops
connections past ~100,000 device entities; Azure Table Storage has no such limit).

Usage: python bench/reconcile.py [--devices 2000] [--drift 0.05]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

sys.path.insert(0, str(ROOT / "bench"))

from common import peak_rss_mib  # noqa: E402

from functions import reconcile  # noqa: E402
from registrar.emulators.graph import EmulatorConfig, EmulatorServer  # noqa: E402
from registrar.localhost.azurite import Azurite  # noqa: E402
from registrar.localhost.environment import DEFAULT_PROFILES, local_env  # noqa: E402
from registrar.localhost.host import LocalTimerRequest  # noqa: E402
from registrar.localhost.servicebus import LocalServiceBusQueue  # noqa: E402
from shared.config import load_settings  # noqa: E402
from shared.runtime import Runtime  # noqa: E402
from shared.state import DeviceRecord  # noqa: E402
from shared.states import DeviceState  # noqa: E402
from shared.storage import blob_service, queue_service, table_service  # noqa: E402


def calls(control) -> dict[str, int]:
    return {k: n for k, n in control.counters()["requests"].items() if k.count(" ") == 2}


async def run(devices: int, drift: float) -> dict:
    config = EmulatorConfig(page_size=500)
    config.throttle.enabled = False
    with Azurite(in_memory=True) as storage, EmulatorServer(config) as graph:
        settings = load_settings(local_env(storage.connection_string, graph.url, DEFAULT_PROFILES))
        control = graph.control()
        tag = settings.profiles.profiles["standard"].group_tag
        group = settings.profiles.profiles["standard"].group_id
        kiosk = settings.profiles.profiles["kiosk"].group_id
        serials = [f"RC{n:07d}" for n in range(devices)]
        for start in range(0, devices, 500):
            control.seed(devices=[{"serial": s, "groupTag": tag} for s in serials[start : start + 500]])
        control.seed(groups=[{"id": group, "displayName": "standard"}, {"id": kiosk, "displayName": "kiosk"}])
        # Seeded as already settled (every device in its group, and known to be), so the runs measured are the
        # steady state; settling 100,000 new devices is what bench/e2e.py measures. The emulator is idle here.
        tenant = graph.app.tenant
        tenant.add_members(group, [tenant.entra_for_serial(s).id for s in serials])
        rt = Runtime.build(
            settings, sender=LocalServiceBusQueue(queue_service(settings), table_service(settings), "unused", create=True)
        )
        for container in settings.containers:  # where reconcile writes its reports (Bicep creates them)
            blob_service(settings).create_container(container)
        records = [
            DeviceRecord(
                serial=serial,
                profile="standard",
                partner="",
                group_tag=tag,
                hash_digest="",
                upload_id="bench",
                file="bench.csv",
                line=0,
                state=DeviceState.READY,
                member_of=group,
            )
            for serial in serials
        ]
        for start in range(0, devices, 100):
            rt.store.create_devices(records[start : start + 100])
        del records
        started = time.monotonic()
        while True:  # the first run finds nothing to settle (a run that adds members would be repeated)
            result = await reconcile.main(LocalTimerRequest(), rt)
            print(
                f"settling: {result.fleet.members_added} added to the group, {time.monotonic() - started:.0f} s",
                file=sys.stderr,
                flush=True,
            )
            if not result.fleet.members_added:
                break
        settle_seconds = time.monotonic() - started
        control.configure(throttle={"enabled": True})
        control.reset_counters()
        started, cpu = time.monotonic(), time.thread_time()
        await reconcile.main(LocalTimerRequest(), rt)
        clean = {
            "seconds": round(time.monotonic() - started, 2),
            "cpu_seconds": round(time.thread_time() - cpu, 2),
            "calls": calls(control),
            "peak_rss_mib": peak_rss_mib(),
        }
        drifted = int(devices * drift)
        state = control.state()
        by_serial = {d["serialNumber"]: d for d in state["devices"]}
        for serial in serials[: drifted // 2]:
            control.change_membership(group, serial, "remove")
        for serial in serials[drifted // 2 : drifted]:
            await rt.directory.update_group_tag(by_serial[serial]["id"], "Drifted")
        control.reset_counters()
        started, cpu = time.monotonic(), time.thread_time()
        result = await reconcile.main(LocalTimerRequest(), rt)
        dirty = {
            "seconds": round(time.monotonic() - started, 2),
            "cpu_seconds": round(time.thread_time() - cpu, 2),
            "calls": calls(control),
            "tags_fixed": result.fleet.tags_fixed,
            "members_added": result.fleet.members_added,
        }
        control.close()

    def total(c: dict[str, int]) -> int:
        return sum(c.values())

    def writes(c: dict[str, int]) -> int:
        return sum(n for k, n in c.items() if k.split(" ")[0] in ("POST", "DELETE", "PATCH"))

    return {
        "devices": devices,
        "settle_seconds": round(settle_seconds, 1),
        "no_drift": {**clean, "total_calls": total(clean["calls"]), "write_calls": writes(clean["calls"])},
        "drift": {
            **dirty,
            "drifted_devices": drifted,
            "total_calls": total(dirty["calls"]),
            "write_calls": writes(dirty["calls"]),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--devices", type=int, default=2000)
    parser.add_argument("--drift", type=float, default=0.05)
    args = parser.parse_args()
    figures = asyncio.run(run(args.devices, args.drift))
    print(json.dumps(figures, indent=1))
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / f"reconcile-{args.devices}.json").write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
