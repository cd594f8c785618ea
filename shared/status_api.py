"""The status API's answers: devices (filtered, paged) and one upload's per-row outcomes.

``partner`` is set by the route a partner's own function key can call, never by a query parameter, so a
partner only ever sees its own devices and uploads.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from .reports import upload_document
from .state import DeviceRecord, StateStore
from .states import DISPLAY, DeviceState

MAX_PAGE = 1000


class BadQuery(ValueError):
    pass


def _state_filter(value: str | None) -> DeviceState | None:
    if not value:
        return None
    for state in DeviceState:
        if value.casefold() in (state.value, DISPLAY[state].casefold()):
            return state
    names = ", ".join(sorted({DISPLAY[s] for s in DeviceState}))
    raise BadQuery(f"unknown state {value!r}: use one of {names}")


def _int(value: str | None, name: str, default: int, low: int, high: int) -> int:
    if value in (None, ""):
        return default
    try:
        number = int(value)
    except ValueError:
        raise BadQuery(f"{name} must be a whole number") from None
    if not low <= number <= high:
        raise BadQuery(f"{name} must be between {low} and {high}")
    return number


def list_devices(store: StateStore, query: dict[str, str], base_url: str, partner: str | None = None) -> dict[str, Any]:

    state = _state_filter(query.get("state"))
    profile = query.get("profile") or None
    wanted_partner = partner if partner is not None else (query.get("partner") or None)
    skip = _int(query.get("skip"), "skip", 0, 0, 10**9)
    top = _int(query.get("top"), "top", 100, 1, MAX_PAGE)
    devices = sorted(store.all_devices(), key=lambda d: d.serial)
    selected = [
        d
        for d in devices
        if (
            state is None
            or DeviceState(d.state) in ({state, DeviceState.IMPORTING} if state == DeviceState.PENDING else {state})
        )
        and (profile is None or d.profile == profile)
        and (wanted_partner is None or d.partner == wanted_partner)
    ]
    page = selected[skip : skip + top]
    body: dict[str, Any] = {"value": [device_view(d) for d in page], "count": len(selected)}
    if skip + top < len(selected):
        next_query = {k: v for k, v in query.items() if v and k not in ("skip",)} | {
            "skip": str(skip + top),
            "top": str(top),
        }
        if partner is not None:
            next_query.pop("partner", None)
        body["nextLink"] = f"{base_url}?{urlencode(next_query)}"
    return body


def device_view(d: DeviceRecord) -> dict[str, Any]:
    """A device as the API and ``status --json`` show it."""
    return {
        "serial": d.serial,
        "profile": d.profile,
        "partner": d.partner or None,
        "state": DISPLAY.get(DeviceState(d.state), d.state),
        "message": d.message,
        "code": d.error_code or None,
        "groupTag": d.group_tag,
        "lastContact": d.last_contacted or None,
        "upload": {"id": d.upload_id, "file": d.file, "line": d.line},
        "hashFingerprint": d.fingerprint,
        "updated": d.updated,
    }


def get_upload(store: StateStore, upload_id: str, partner: str | None = None) -> dict[str, Any] | None:
    upload = store.get_upload(upload_id)
    if upload is None or (partner is not None and upload.partner != partner):
        return None  # another partner's upload is indistinguishable from a missing one
    return upload_document(upload, store.rows_of(upload_id))
