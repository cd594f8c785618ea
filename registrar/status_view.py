"""Device and upload tables for people (rich) and machines (JSON)."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from rich.console import Console
from rich.table import Table

from shared.state import DeviceRecord, StateStore, row_key
from shared.states import DISPLAY, DeviceState

_WHERE = re.compile(r"^.*?, line \d+(?:, |: )")


def device_rows(store: StateStore) -> list[DeviceRecord]:
    return sorted(store.all_devices(), key=lambda d: (d.partner, d.profile, d.serial))


def parse_state(text: str) -> DeviceState:
    for state in DeviceState:
        if text.casefold() in (state.value, DISPLAY[state].casefold()):
            return state
    raise ValueError(f"unknown state {text!r}: use one of {', '.join(sorted(set(DISPLAY.values())))}")


def selected_devices(store: StateStore, args: Any) -> list[DeviceRecord]:
    """The devices the filters name, chosen by the state store (a query), not by reading every device."""
    clauses, values = ["PartitionKey eq 'device'"], {}
    if args.serial:
        clauses.append("RowKey eq @key")
        values["key"] = row_key(args.serial)
    if args.state:
        state = parse_state(args.state)
        if state == DeviceState.PENDING:  # "Registration Pending" covers both
            clauses.append("( state eq @s or state eq @s2 )")
            values["s"], values["s2"] = DeviceState.PENDING.value, DeviceState.IMPORTING.value
        else:
            clauses.append("state eq @s")
            values["s"] = state.value
    for name, field in (("profile", "profile"), ("partner", "partner"), ("upload", "upload_id")):
        if getattr(args, name, None):
            clauses.append(f"{field} eq @{name}")
            values[name] = getattr(args, name)
    devices = store.query_devices(" and ".join(clauses), **values)
    return sorted(devices, key=lambda d: (d.partner, d.profile, d.serial))


def not_registered_rows(
    store: StateStore, upload_ids: list[str] | None = None, partner: str | None = None, profile: str | None = None
) -> list[dict[str, Any]]:
    """Every row of the uploads that did not become a device (duplicate or rejected), with its upload."""
    if upload_ids is None:
        uploads = [
            u
            for u in store.all_uploads()
            if (partner is None or u.partner == partner) and (profile is None or u.profile == profile)
        ]
    else:
        uploads = [u for u in (store.get_upload(i) for i in upload_ids) if u is not None]
    rows = []
    for upload in sorted(uploads, key=lambda u: (u.container, u.blob_name, u.received)):
        for row in store.rows_of(upload.upload_id):
            if row.outcome != "accepted":
                rows.append(
                    {
                        "upload": f"{upload.container}/{upload.blob_name}",
                        "uploadId": upload.upload_id,
                        **row.as_dict(),
                        "message": _WHERE.sub("", row.message),  # the upload and line have their own fields
                    }
                )
    return rows


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


def rejected_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="Rows not registered (from the upload reports)")
    table.add_column("Upload", overflow="fold", max_width=36)
    table.add_column("Line", justify="right", min_width=4)
    table.add_column("Serial", overflow="fold", min_width=10)
    table.add_column("Outcome", min_width=9)
    table.add_column("Code", min_width=22)
    table.add_column("Reason", overflow="fold", ratio=1)
    for row in rows:
        table.add_row(row["upload"], str(row["line"]), row["serial"], row["outcome"], row["code"], row["message"])
    return table


def print_status(
    store: StateStore,
    console: Console | None = None,
    *,
    devices: list[DeviceRecord] | None = None,
    rows: list[dict[str, Any]] | None = None,
) -> None:
    console = console or Console()
    devices = device_rows(store) if devices is None else devices
    rows = not_registered_rows(store) if rows is None else rows
    console.print(devices_table(devices))
    if rows:
        console.print(rejected_table(rows))
    counts = state_counts(devices)
    console.print(", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "no devices")
