"""Per-upload result reports (CSV for people, JSON for machines), written next to the upload.

Report cells come from uploaded data, and admins open reports in Excel: any cell that Excel would read as
a formula (``=``, ``+``, ``-``, ``@``, tab, CR) is prefixed with ``'`` so it shows as text.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable
from typing import Any

from .config import REPORTS_PREFIX
from .state import RowOutcome, UploadRecord

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(cell: object) -> str:
    text = "" if cell is None else str(cell)
    return "'" + text if text.startswith(_FORMULA_START) else text


def report_paths(blob_name: str, upload_id: str | None = None) -> tuple[str, str]:
    """Without ``upload_id``: the report of the latest upload under that name. With it: that upload's own
    report, which a later upload under the same name never overwrites."""
    base = f"{REPORTS_PREFIX}{blob_name}{'.' + upload_id[:8] if upload_id else ''}.result"
    return base + ".csv", base + ".json"


def write_upload_reports(
    write: Callable[[str, str, bytes, str], None],
    upload: UploadRecord,
    rows: Iterable[RowOutcome],
    states: dict[str, tuple[str, str]] | None = None,
    *,
    latest: bool,
) -> None:
    """The upload's own report, and the by-name copy when it is the latest upload of that name."""
    rows = list(rows)
    csv_data = render_csv(rows, states)
    json_data = render_json(upload, rows, states)
    for csv_path, json_path in [report_paths(upload.blob_name, upload.upload_id)] + (
        [report_paths(upload.blob_name)] if latest else []
    ):
        write(upload.container, csv_path, csv_data, "text/csv")
        write(upload.container, json_path, json_data, "application/json")


def render_csv(rows: Iterable[RowOutcome], states: dict[str, tuple[str, str]] | None = None) -> bytes:
    """``states`` maps a serial key to (state display name, message) once devices progress."""
    from .intake.model import serial_key

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(["Line", "Serial", "Outcome", "Code", "Message", "State", "State message"])
    for row in rows:
        state, state_message = (
            (states or {}).get(serial_key(row.serial), ("", "")) if row.outcome == "accepted" else ("", "")
        )
        writer.writerow(
            [neutralise(v) for v in (row.line, row.serial, row.outcome, row.code, row.message, state, state_message)]
        )
    return buffer.getvalue().encode("utf-8-sig")  # BOM: Excel opens UTF-8 correctly


def upload_document(
    upload: UploadRecord, rows: Iterable[RowOutcome], states: dict[str, tuple[str, str]] | None = None
) -> dict[str, Any]:
    """One upload and its rows: the JSON report next to the upload, and the status API's answer."""
    from .intake.model import serial_key

    items: list[dict[str, Any]] = []
    for row in rows:
        item = row.as_dict()
        if row.outcome == "accepted" and states and serial_key(row.serial) in states:
            item["state"], item["stateMessage"] = states[serial_key(row.serial)]
        items.append(item)
    return {
        "uploadId": upload.upload_id,
        "container": upload.container,
        "blob": upload.blob_name,
        "profile": upload.profile,
        "partner": upload.partner or None,
        "status": upload.status,
        "reason": upload.reason or None,
        "received": upload.received,
        "counts": {
            "accepted": upload.accepted,
            "duplicates": upload.duplicates,
            "moved": upload.moved,
            "rejected": upload.rejected,
        },
        "report": report_paths(upload.blob_name, upload.upload_id)[0],
        "rows": items,
    }


def render_json(
    upload: UploadRecord, rows: Iterable[RowOutcome], states: dict[str, tuple[str, str]] | None = None
) -> bytes:
    return json.dumps(upload_document(upload, rows, states), indent=1).encode("utf-8")


DEVICE_COLUMNS = [
    "Serial",
    "Profile",
    "Partner",
    "State",
    "Message",
    "Group tag",
    "Last contact",
    "Upload",
    "Line",
    "Hash fingerprint",
    "Updated",
]


def render_devices_csv(devices: Iterable[Any]) -> bytes:
    """The tenant-wide (or one partner's) device list: one row per device, its state and message."""
    from .states import DISPLAY, DeviceState

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(DEVICE_COLUMNS)
    for d in devices:
        state = DISPLAY.get(DeviceState(d.state), d.state)
        writer.writerow(
            [
                neutralise(v)
                for v in (
                    d.serial,
                    d.profile,
                    d.partner,
                    state,
                    d.message,
                    d.group_tag,
                    d.last_contacted,
                    d.file,
                    d.line,
                    d.fingerprint,
                    d.updated,
                )
            ]
        )
    return buffer.getvalue().encode("utf-8-sig")
