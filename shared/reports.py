"""Per-upload result reports (CSV for people, JSON for machines), written next to the upload.

Report cells come from uploaded data, and admins open reports in Excel: any cell that Excel would read as
a formula (``=``, ``+``, ``-``, ``@``, tab, CR) is prefixed with ``'`` so it shows as text.
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
from collections.abc import Callable, Iterable
from typing import Any, BinaryIO, TextIO

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
    write: Callable[[str, str, bytes | BinaryIO, str], None],
    upload: UploadRecord,
    rows: Iterable[RowOutcome],
    states: dict[str, tuple[str, str]] | None = None,
    *,
    latest: bool,
) -> None:
    """The upload's own report, and the by-name copy when it is the latest upload of that name.

    Both reports are written in one pass over ``rows`` into temporary files (in memory while small), so a
    report of 200,000 rows never sits in memory whole."""
    with (
        tempfile.SpooledTemporaryFile(_SPOOL_BYTES) as csv_file,
        tempfile.SpooledTemporaryFile(_SPOOL_BYTES) as json_file,
    ):
        csv_text = io.TextIOWrapper(csv_file, encoding="utf-8-sig", newline="")
        json_text = io.TextIOWrapper(json_file, encoding="utf-8", newline="")
        writer = _csv_writer(csv_text)
        document = upload_document(upload, [])
        head = json.dumps(document, indent=1)
        json_text.write(head[: head.rindex("[")] + "[")  # everything up to the rows list
        for n, row in enumerate(rows):
            writer.writerow(_csv_cells(row, states))
            json_text.write(("," if n else "") + "\n  " + json.dumps(_row_item(row, states)))
        json_text.write("\n ]\n}")
        for text in (csv_text, json_text):
            text.flush()
            text.detach()
        for csv_path, json_path in [report_paths(upload.blob_name, upload.upload_id)] + (
            [report_paths(upload.blob_name)] if latest else []
        ):
            for path, data, kind in ((csv_path, csv_file, "text/csv"), (json_path, json_file, "application/json")):
                data.seek(0)
                write(upload.container, path, data, kind)


_SPOOL_BYTES = 4 * 1024 * 1024


def _csv_writer(out: TextIO):
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["Line", "Serial", "Outcome", "Code", "Message", "State", "State message"])
    return writer


def _csv_cells(row: RowOutcome, states: dict[str, tuple[str, str]] | None) -> list[str]:
    from .intake.model import serial_key

    state, state_message = (
        (states or {}).get(serial_key(row.serial), ("", "")) if row.outcome == "accepted" else ("", "")
    )
    return [neutralise(v) for v in (row.line, row.serial, row.outcome, row.code, row.message, state, state_message)]


def _row_item(row: RowOutcome, states: dict[str, tuple[str, str]] | None) -> dict[str, Any]:
    from .intake.model import serial_key

    item = row.as_dict()
    if row.outcome == "accepted" and states and serial_key(row.serial) in states:
        item["state"], item["stateMessage"] = states[serial_key(row.serial)]
    return item


def render_csv(rows: Iterable[RowOutcome], states: dict[str, tuple[str, str]] | None = None) -> bytes:
    """``states`` maps a serial key to (state display name, message) once devices progress."""
    buffer = io.StringIO()
    writer = _csv_writer(buffer)
    for row in rows:
        writer.writerow(_csv_cells(row, states))
    return buffer.getvalue().encode("utf-8-sig")  # BOM: Excel opens UTF-8 correctly


def upload_document(
    upload: UploadRecord, rows: Iterable[RowOutcome], states: dict[str, tuple[str, str]] | None = None
) -> dict[str, Any]:
    """One upload and its rows: the JSON report next to the upload, and the status API's answer."""

    items = [_row_item(row, states) for row in rows]
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
    "Assigned user",
    "Last seen",
    "Registered",
    "Age",
    "Upload",
    "Line",
    "Hash fingerprint",
    "Updated",
]


def device_cells(d: Any, now: Any = None) -> list[str]:
    """One device as a devices.csv row (also the portal's CSV export): the fields the portal shows."""
    from .devices_query import age, last_seen, state_label

    values = (
        d.serial,
        d.profile,
        d.partner,
        state_label(d),
        d.message,
        d.group_tag,
        d.assigned_user,
        last_seen(d.last_contacted),
        d.created,
        age(d.created, now),
        d.file,
        d.line,
        d.fingerprint,
        d.updated,
    )
    return [neutralise(v) for v in values]
