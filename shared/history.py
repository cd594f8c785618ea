"""Each device's history.

Changes to the device are kept **on the device's own entity**, one property per event (``ev_<time-ordered
id>``), written by the same storage call that saves the change: a timeline costs no storage call of its
own, and a batch of devices saved in one table transaction keeps its history in that transaction too
(a separate history entity per change was a third of all storage calls per device). The state store
compares what it read with what it saves and adds one event naming what changed (state, message, new
attempt, upload, import, profile, enrollment, last contact), so every place that moves a device
(ingest, register, reconcile, fleet, re-drive, requeue) is covered without code of its own.

An entity holds at most 252 properties, so a full save keeps the newest :data:`MAX_EVENTS` events.

Admin actions that do not change the device record (a retry asked for in the portal) are noted with
:func:`note` in the table ``{prefix}history`` (PartitionKey = the device's row key), which also holds
timelines written before events moved onto the device. Writing history must never fail the work it
describes: such errors are logged and dropped.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .states import DISPLAY, DeviceState

if TYPE_CHECKING:
    from .state import DeviceRecord, StateStore

log = logging.getLogger("registrar.history")

EVENT_PREFIX = "ev_"
MAX_EVENTS = 150  # of the 252 properties an entity may have; the device's own fields take about 35

# The fields whose change is worth a line in the timeline.
TRACKED = (
    "state",
    "message",
    "error_code",
    "profile",
    "group_tag",
    "upload_id",
    "file",
    "line",
    "generation",
    "import_id",
    "autopilot_id",
    "entra_object_id",
    "enrollment_state",
    "last_contacted",
)


def snapshot(record: DeviceRecord) -> dict[str, Any]:
    return {name: getattr(record, name) for name in TRACKED}


def _label(state: str) -> str:
    if state == DeviceState.IMPORTING:
        return "Importing (Graph import call)"
    try:
        return DISPLAY[DeviceState(state)]
    except ValueError:
        return state


def _never(value: str) -> bool:
    return not value or value.startswith("0001-01-01")


def describe(before: dict[str, Any], after: dict[str, Any]) -> tuple[str, list[str]]:
    """(kind, lines) for one saved change; kind is the most telling: attempt, import, state, ..."""
    lines: list[str] = []
    kind = "change"
    if after["upload_id"] != before["upload_id"]:
        kind = "received"
        lines.append(f"Received again in {after['file']} line {after['line']} (upload {after['upload_id'][:8]})")
    if after["generation"] != before["generation"]:
        kind = "attempt" if kind == "change" else kind
        lines.append(f"New registration attempt (generation {after['generation']})")
    if after["import_id"] and after["import_id"] != before["import_id"]:
        kind = "import"
        lines.append(f"Graph import call accepted (imported identity {after['import_id']})")
    if after["state"] != before["state"]:
        kind = kind if kind in ("import", "received") else "state"
        lines.append(f"{_label(before['state'])} → {_label(after['state'])}")
    if after["profile"] != before["profile"]:
        kind = "moved"
        lines.append(f"Moved to profile {after['profile']} (was {before['profile']})")
    if after["group_tag"] != before["group_tag"]:
        lines.append(f"Group tag {after['group_tag']} (was {before['group_tag'] or 'none'})")
    if after["autopilot_id"] and after["autopilot_id"] != before["autopilot_id"]:
        lines.append(f"Autopilot device {after['autopilot_id']}")
    if after["entra_object_id"] and after["entra_object_id"] != before["entra_object_id"]:
        kind = "entra" if kind == "change" else kind
        lines.append(f"Entra device object {after['entra_object_id']} found")
    if after["enrollment_state"] != before["enrollment_state"] and after["enrollment_state"] == "enrolled":
        kind = "enrolled"
        lines.append("Enrolled: a user set the device up")
    if after["last_contacted"] != before["last_contacted"] and not _never(after["last_contacted"]):
        kind = "contact" if kind == "change" else kind
        lines.append(f"Last contact {after['last_contacted']}")
    if after["message"] != before["message"] and after["message"] not in (_label(after["state"]), ""):
        lines.append(after["message"])
    elif after["error_code"] != before["error_code"] and after["error_code"]:
        lines.append(f"code {after['error_code']}")
    return kind, lines


def event_key(now: datetime | None = None) -> str:
    """Time-ordered and unique: microseconds, then a random tail for two writers in the same microsecond."""
    moment = now or datetime.now(UTC)
    return moment.strftime("%Y%m%dT%H%M%S%fZ") + "-" + uuid.uuid4().hex[:8]


def event_name(now: datetime | None = None) -> str:
    """A property name (letters, digits, underscore) that sorts in time order."""
    return EVENT_PREFIX + event_key(now).replace("-", "_")


def append(store: StateStore, device_key: str, kind: str, text: str, **facts: Any) -> None:
    now = datetime.now(UTC)
    entity = {
        "PartitionKey": device_key,
        "RowKey": event_key(now),
        "at": now.isoformat(timespec="seconds"),
        "kind": kind,
        "text": text[:8000],
        **{k: v for k, v in facts.items() if v not in (None, "")},
    }
    try:
        store.history.create_entity(entity)
    except Exception:  # noqa: BLE001 - history must never fail the change it records
        log.warning("device history not written", exc_info=True, extra={"kind": kind})


def change_event(before: dict[str, Any], record: DeviceRecord) -> tuple[str, str] | None:
    """The event (property name, JSON) for a change about to be saved, or None if nothing worth a line."""
    after = snapshot(record)
    if after == before:
        return None
    kind, lines = describe(before, after)
    if not lines:
        return None
    now = datetime.now(UTC)
    event: dict[str, Any] = {"at": now.isoformat(timespec="seconds"), "kind": kind, "text": "\n".join(lines)[:8000]}
    event |= {k: v for k, v in (("state", record.state), ("code", record.error_code)) if v}
    if after["upload_id"] != before["upload_id"]:
        event |= {"prevUpload": before["upload_id"], "prevFile": before["file"], "prevLine": before["line"]}
    return event_name(now), json.dumps(event, ensure_ascii=False)


def keep_newest(events: dict[str, str]) -> dict[str, str]:
    """At most MAX_EVENTS, the newest (names sort in time order)."""
    if len(events) <= MAX_EVENTS:
        return events
    return {name: events[name] for name in sorted(events)[-MAX_EVENTS:]}


def note(store: StateStore, serial: str, kind: str, text: str) -> None:
    """A repair or action that does not change the device record (group tag, membership, an admin's retry)."""
    from .state import row_key

    append(store, row_key(serial), kind, text)


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    at: str
    kind: str
    text: str

    def as_dict(self) -> dict[str, str]:
        return {"at": self.at, "kind": self.kind, "text": self.text}


def timeline(store: StateStore, record: DeviceRecord, limit: int = 500) -> list[TimelineEntry]:
    """The device's story, oldest first: when and where it was received (the first upload, even if a later
    one brought it again), then every recorded change and repair, then its last contact. ``record`` must be
    read whole (``get_device``): list queries leave the events out."""
    events: list[dict[str, Any]] = [json.loads(record.events[name]) | {"_key": name} for name in sorted(record.events)]
    for entity in store.history.query_entities(  # admin notes, and timelines from before events moved
        "PartitionKey eq @k", parameters={"k": record.key}, results_per_page=limit
    ):
        events.append(dict(entity) | {"_key": EVENT_PREFIX + entity["RowKey"].replace("-", "_")})
        if len(events) >= limit:
            break
    events.sort(key=lambda e: e["_key"])
    first = next((e for e in events if e.get("prevUpload")), None)
    upload, file, line = (
        (first["prevUpload"], first["prevFile"], first["prevLine"]) if first else (record.upload_id, record.file, record.line)
    )
    entries = [
        TimelineEntry(record.created, "received", f"Received in {file} line {line} (upload {upload[:8]})"),
        TimelineEntry(record.created, "queued", "Accepted and queued for registration"),
    ]
    entries += [TimelineEntry(e.get("at", ""), e.get("kind", "change"), e.get("text", "")) for e in events[-limit:]]
    if not _never(record.last_contacted) and not any(record.last_contacted in e.text for e in entries):
        entries.append(TimelineEntry(record.last_contacted, "contact", f"Last contact {record.last_contacted}"))
    return entries
