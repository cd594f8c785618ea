"""One page of devices, chosen and paged by the state store itself (Azure Tables OData ``$filter``, ``$top``
and continuation tokens): a page costs a bounded number of storage calls whatever the fleet's size, and
nothing here ever reads every device.

Order is the table's own: by serial (the RowKey is the case-folded serial). Azure Tables cannot order by
another property, so other orders are the page's own (the portal sorts the rows it shows).

A cursor is the table's continuation token (its opaque next PartitionKey and RowKey), base64url-encoded. It carries
no authority: the filters, the partner restriction included, are applied again on every call, so a
cursor taken from another query or made up only moves where the same filtered query starts.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from .intake.model import serial_key
from .state import _LIST_FIELDS, DEVICES_PARTITION, DeviceRecord, StateStore
from .states import DISPLAY, DeviceState

MAX_PAGE = 1000  # Azure Tables returns at most 1,000 entities per request
MAX_CALLS = 8  # storage requests one page may make; a sparse filter returns a cursor to go on from


class BadQuery(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class DeviceFilter:
    state: DeviceState | None = None
    profile: str | None = None
    partner: str | None = None  # "" = admin uploads only; None = any
    upload: str | None = None
    serial: str | None = None  # a serial, or the start of one

    def odata(self) -> tuple[str, dict[str, str]]:
        clauses, values = [f"PartitionKey eq '{DEVICES_PARTITION}'"], {}
        if self.state is not None:
            if self.state == DeviceState.PENDING:  # "Registration Pending" covers both
                clauses.append("( state eq @s or state eq @s2 )")
                values["s"], values["s2"] = DeviceState.PENDING.value, DeviceState.IMPORTING.value
            else:
                clauses.append("state eq @s")
                values["s"] = self.state.value
        for name, column in (("profile", "profile"), ("partner", "partner"), ("upload", "upload_id")):
            value = getattr(self, name)
            if value is not None:
                clauses.append(f"{column} eq @{name}")
                values[name] = value
        if self.serial:
            low = quote(serial_key(self.serial), safe="")
            clauses.append("RowKey ge @lo and RowKey lt @hi")
            values["lo"], values["hi"] = low, low + "\uffff"
        return " and ".join(clauses), values


@dataclass(slots=True)
class DevicePage:
    devices: list[DeviceRecord]
    cursor: str | None  # where the next page starts; None at the end
    calls: int  # storage requests made for this page
    scanned_to_end: bool = field(default=False)


def parse_state(value: str | None) -> DeviceState | None:
    if not value:
        return None
    for state in DeviceState:
        if value.casefold() in (state.value, DISPLAY[state].casefold()):
            return state
    names = ", ".join(sorted({DISPLAY[s] for s in DeviceState}))
    raise BadQuery(f"unknown state {value!r}: use one of {names}")


def encode_cursor(token: dict[str, str] | None) -> str | None:
    if not token:
        return None
    raw = json.dumps([token.get("PartitionKey", ""), token.get("RowKey", "")], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> dict[str, str] | None:
    if not cursor:
        return None
    try:
        partition, row = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, TypeError, binascii.Error):
        raise BadQuery("cursor is not one this API handed out") from None
    if not isinstance(partition, str) or not isinstance(row, str):
        raise BadQuery("cursor is not one this API handed out")
    return {"PartitionKey": partition, "RowKey": row}


def device_page(store: StateStore, where: DeviceFilter, top: int = 100, cursor: str | None = None) -> DevicePage:
    """Up to ``top`` devices matching ``where`` after ``cursor``, in serial order, in at most ``MAX_CALLS``
    storage requests. A filter that matches few devices may return fewer than ``top`` with a cursor: the
    table answers a filtered request with what it found in the range it scanned (Azure stops a scan after
    1,000 entities or 5 seconds), and we stop asking after ``MAX_CALLS`` requests."""
    if not 1 <= top <= MAX_PAGE:
        raise BadQuery(f"top must be between 1 and {MAX_PAGE}")
    query, values = where.odata()
    token = decode_cursor(cursor)
    devices: list[DeviceRecord] = []
    calls = 0
    while calls < MAX_CALLS and len(devices) < top:
        # Each request asks for at most what is still missing, so a page never has to be cut (a cut page
        # would lose its own continuation token).
        pages = store.devices.query_entities(
            query, parameters=values or None, select=_LIST_FIELDS, results_per_page=top - len(devices)
        ).by_page(continuation_token=token)
        page = next(pages)
        calls += 1
        for entity in page:
            record = DeviceRecord.from_entity(entity)
            record.listed = True
            devices.append(record)
        token = pages.continuation_token
        if not token:
            break
    return DevicePage(devices, encode_cursor(token), calls, scanned_to_end=not token)


# -- how a device is shown: the API, `status --json`, the portal and devices.csv share these -------------------
NEVER = "never"


def last_seen(value: str) -> str:
    """Graph's "never contacted" is ``0001-01-01T00:00:00Z``; show it (and an empty value) as "never"."""
    return NEVER if not value or value.startswith("0001-01-01") else value


def age(created: str, now: datetime | None = None) -> str:
    """Time since the device was received for registration, as people read it: 5 min, 3 h, 12 d."""
    try:
        then = datetime.fromisoformat(created)
    except ValueError:
        return ""
    if then.tzinfo is None:
        then = then.replace(tzinfo=UTC)
    seconds = max(0, int(((now or datetime.now(UTC)) - then).total_seconds()))
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 86400:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} d"


def state_label(record: DeviceRecord) -> str:
    try:
        return DISPLAY[DeviceState(record.state)]
    except ValueError:
        return record.state


def device_view(d: DeviceRecord, now: datetime | None = None) -> dict[str, Any]:
    """A device as the API, ``status --json`` and the portal show it."""
    return {
        "serial": d.serial,
        "assignedUser": d.assigned_user or None,
        "profile": d.profile,
        "partner": d.partner or None,
        "state": state_label(d),
        "stateCode": d.state,
        "message": d.message,
        "code": d.error_code or None,
        "groupTag": d.group_tag,
        "lastSeen": last_seen(d.last_contacted),
        "lastContact": d.last_contacted or None,
        "registeredAt": d.created,
        "age": age(d.created, now),
        "upload": {"id": d.upload_id, "file": d.file, "line": d.line},
        "hashFingerprint": d.fingerprint,
        "updated": d.updated,
    }
