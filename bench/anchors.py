"""The call patterns of the tools admins use today, replayed against the same Graph emulator with the same
throttle and timing settings as the product, so the product's figures have something to be compared with.

- ``getwindowsautopilotinfo``: Get-WindowsAutoPilotInfo ``-Online`` (autopilot-graph-facts.md, "How today's
  tools do it"): one POST per device, then a GET of each imported record until it leaves ``unknown``, then
  waits for each Autopilot record, then the Entra lookup and one member add per device. It never deletes
  the imported records.
- ``windowsautopilotintune``: WindowsAutopilotIntune ``Import-AutopilotCSV``: one POST per row, polls the
  whole imported list until every record is processed, then deletes each record. No group membership.

Both honour 429 with its ``Retry-After``, or back off exponentially without one (the real scripts mostly
do not, and would stop instead), and
poll at the emulator's pace: ``--poll`` seconds where the scripts wait 30 s and 15 s. Figures only.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

IMPORTS = "/deviceManagement/importedWindowsAutopilotDeviceIdentities"
DEVICES = "/deviceManagement/windowsAutopilotDeviceIdentities"


@dataclass(slots=True)
class AnchorRun:
    name: str
    devices: int
    calls: Counter[str] = field(default_factory=Counter)
    throttled: int = 0
    ready_seconds: float = 0.0  # every device registered in Autopilot
    settled_seconds: float = 0.0  # the tool's own end state
    settled_means: str = ""

    def figures(self) -> dict[str, Any]:
        total = sum(self.calls.values())
        return {
            "anchor": self.name,
            "devices": self.devices,
            "graph_calls_per_device": round(total / self.devices, 3),
            "calls_by_route_per_device": {k: round(v / self.devices, 3) for k, v in sorted(self.calls.items())},
            "throttled_429": self.throttled,
            "seconds_to_ready_for_user": round(self.ready_seconds, 1),
            "seconds_to_settled": round(self.settled_seconds, 1),
            "settled_means": self.settled_means,
        }


class _Graph:
    """Plain HTTP, one call at a time, as a PowerShell loop makes them."""

    def __init__(self, base_url: str, token: str, run: AnchorRun) -> None:
        self._http = httpx.AsyncClient(base_url=base_url.rstrip("/"), headers={"Authorization": f"Bearer {token}"})
        self._run = run

    async def call(self, method: str, path: str, route: str, **kwargs: Any) -> httpx.Response:
        throttled = 0
        while True:
            response = await self._http.request(method, path, **kwargs)
            self._run.calls[route] += 1
            if response.status_code != 429:
                return response
            self._run.throttled += 1
            throttled += 1
            # Retry-After when there is one; otherwise the Graph SDKs' retry handler's exponential backoff
            # (3 s, doubled each time), the kindest thing a script can do with Intune's header-less 429s.
            await asyncio.sleep(float(response.headers.get("Retry-After") or min(180.0, 3.0 * 2 ** (throttled - 1))))

    async def close(self) -> None:
        await self._http.aclose()


async def get_windows_autopilot_info(
    base_url: str, token: str, rows: list[tuple[str, str]], group_id: str, poll: float
) -> AnchorRun:
    run = AnchorRun("Get-WindowsAutoPilotInfo -Online", len(rows))
    graph = _Graph(base_url, token, run)
    started = time.monotonic()
    try:
        ids = {}
        for serial, hardware_hash in rows:
            body = {"serialNumber": serial, "hardwareIdentifier": hardware_hash}
            response = await graph.call("POST", IMPORTS, "POST import record", json=body)
            ids[serial] = response.json()["id"]
        waiting = dict(ids)
        while waiting:
            for serial, identity in list(waiting.items()):
                record = (await graph.call("GET", f"{IMPORTS}/{identity}", "GET import record")).json()
                if record.get("state", {}).get("deviceImportStatus") not in ("unknown", "pending", None):
                    del waiting[serial]
            if waiting:
                await asyncio.sleep(poll)
        devices: dict[str, dict] = {}
        while len(devices) < len(rows):
            for serial, _ in rows:
                if serial in devices:
                    continue
                query = {"$filter": f"contains(serialNumber,'{serial}')"}
                found = (await graph.call("GET", DEVICES, "GET autopilot device", params=query)).json()["value"]
                match = [d for d in found if d["serialNumber"] == serial]
                if match:
                    devices[serial] = match[0]
            if len(devices) < len(rows):
                await asyncio.sleep(poll)
        run.ready_seconds = time.monotonic() - started
        added: set[str] = set()
        while len(added) < len(rows):
            for serial, device in devices.items():
                if serial in added:
                    continue
                query = {"$filter": f"deviceId eq '{device['azureActiveDirectoryDeviceId']}'"}
                entra = (await graph.call("GET", "/devices", "GET entra device", params=query)).json()["value"]
                if not entra:
                    continue
                body = {"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{entra[0]['id']}"}
                response = await graph.call("POST", f"/groups/{group_id}/members/$ref", "POST member add", json=body)
                if response.status_code in (204, 400):
                    added.add(serial)
            if len(added) < len(rows):
                await asyncio.sleep(poll)
        run.settled_seconds = time.monotonic() - started
        run.settled_means = "every device in its group (import records left behind)"
    finally:
        await graph.close()
    return run


async def windows_autopilot_intune(base_url: str, token: str, rows: list[tuple[str, str]], poll: float) -> AnchorRun:
    run = AnchorRun("WindowsAutopilotIntune Import-AutopilotCSV", len(rows))
    graph = _Graph(base_url, token, run)
    started = time.monotonic()
    try:
        mine = set()
        for serial, hardware_hash in rows:
            body = {"serialNumber": serial, "hardwareIdentifier": hardware_hash}
            response = await graph.call("POST", IMPORTS, "POST import record", json=body)
            mine.add(response.json()["id"])
        while True:
            records, url = [], IMPORTS
            while url:
                page = (await graph.call("GET", url, "GET import list")).json()
                records += page["value"]
                url = page.get("@odata.nextLink", "").split("/v1.0", 1)[-1] if page.get("@odata.nextLink") else ""
            pending = [
                r for r in records if r["id"] in mine and r["state"]["deviceImportStatus"] in ("unknown", "pending")
            ]
            if not pending:
                break
            await asyncio.sleep(poll)
        run.ready_seconds = time.monotonic() - started
        for identity in mine:
            await graph.call("DELETE", f"{IMPORTS}/{identity}", "DELETE import record")
        run.settled_seconds = time.monotonic() - started
        run.settled_means = "import records deleted (no group membership)"
    finally:
        await graph.close()
    return run
