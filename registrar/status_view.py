"""Device and upload tables for people (rich) and machines (JSON)."""

from __future__ import annotations

import re
from collections import Counter

from rich.console import Console
from rich.table import Table

from shared.state import DeviceRecord, StateStore
from shared.states import DISPLAY, DeviceState

_WHERE = re.compile(r"^.*?, line \d+(?:, |: )")


def device_rows(store: StateStore) -> list[DeviceRecord]:
    return sorted(store.all_devices(), key=lambda d: (d.partner, d.profile, d.serial))


def state_counts(devices: list[DeviceRecord]) -> Counter[str]:
    return Counter(DISPLAY.get(DeviceState(d.state), d.state) for d in devices)


def devices_table(devices: list[DeviceRecord], title: str = "Devices") -> Table:
    table = Table(title=title, show_lines=False)
    for column in ("Serial", "Profile", "Partner", "State", "Message"):
        table.add_column(column, overflow="fold")
    colours = {
        DeviceState.READY: "green",
        DeviceState.ACTIVE: "green",
        DeviceState.FAILED: "red",
        DeviceState.INACTIVE: "yellow",
    }
    for d in devices:
        state = DeviceState(d.state)
        label = DISPLAY.get(state, d.state)
        colour = colours.get(state)
        table.add_row(d.serial, d.profile, d.partner or "-", f"[{colour}]{label}[/]" if colour else label, d.message)
    return table


def rejected_table(store: StateStore) -> Table:
    table = Table(title="Rows not registered (from the upload reports)")
    table.add_column("Upload", overflow="fold", max_width=36)
    table.add_column("Line", justify="right", min_width=4)
    table.add_column("Serial", overflow="fold", min_width=10)
    table.add_column("Outcome", min_width=9)
    table.add_column("Code", min_width=22)
    table.add_column("Reason", overflow="fold", ratio=1)
    for upload in sorted(store.all_uploads(), key=lambda u: (u.container, u.blob_name)):
        for row in store.rows_of(upload.upload_id):
            if row.outcome != "accepted":
                reason = _WHERE.sub("", row.message)  # the upload and line have their own columns
                table.add_row(
                    f"{upload.container}/{upload.blob_name}", str(row.line), row.serial, row.outcome, row.code, reason
                )
    return table


def print_status(store: StateStore, console: Console | None = None) -> None:
    console = console or Console()
    devices = device_rows(store)
    console.print(devices_table(devices))
    console.print(rejected_table(store))
    counts = state_counts(devices)
    console.print(", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "no devices yet")
