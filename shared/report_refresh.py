"""Keep reports current as devices move on: the per-upload reports of uploads whose devices changed
state, at every run, and the tenant-wide export ``device-uploads/_reports/devices.csv`` with each partner's
own list, with the fleet's full check.

Why not everything every run: at 100,000 devices the exports are a read of every device and 41 MiB of
CSV; the per-upload reports of the uploads that changed cost what changed. The portal's devices view and
its CSV export read the state store live, so an export that is up to one full-check period old loses
nothing an admin acts on.
"""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Callable, Iterable
from typing import BinaryIO

from .config import ADMIN_CONTAINER, PARTNER_CONTAINER_PREFIX, REPORTS_PREFIX
from .intake.model import serial_key
from .reports import DEVICE_COLUMNS, device_cells, write_upload_reports
from .state import KEYS_PER_QUERY, DeviceRecord, RowOutcome, StateStore, UploadRecord
from .states import DISPLAY, DeviceState

ReportWriter = Callable[[str, str, bytes | BinaryIO, str], None]

# A listing returns up to 1,000 devices a call (Azure Tables' page); a lookup by serial 14 (KEYS_PER_QUERY).
LISTED_PER_CALL = 1_000
_SPOOL_BYTES = 4 * 1024 * 1024


def refresh_reports(
    store: StateStore,
    write: ReportWriter,
    changed_uploads: set[str],
    partners: list[str],
    *,
    exports: bool = True,
    devices_known: int = 0,
) -> int:
    """Rewrite the reports of ``changed_uploads`` and, with ``exports``, the device lists. Returns how many
    upload reports were written. The changed uploads' devices are read by serial when that takes fewer
    calls than listing the ``devices_known`` (about how many devices there are)."""
    uploads = [u for u in (store.get_upload(i) for i in sorted(changed_uploads)) if u is not None]
    rows = {u.upload_id: store.rows_of(u.upload_id) for u in uploads}
    lookups = sum(len(r) for r in rows.values()) / KEYS_PER_QUERY
    devices: list[DeviceRecord] | None = None
    if exports or lookups > max(1, devices_known / LISTED_PER_CALL):
        devices = sorted(store.all_devices(), key=lambda d: (d.partner, d.profile, d.serial))
        states = _states(devices)
    else:
        states = _states(store.get_devices(r.serial for upload in rows.values() for r in upload if r.serial).values())
    for upload in uploads:
        _write_upload(store, write, upload, rows[upload.upload_id], states)
    if devices is not None and exports:
        _write_devices(write, ADMIN_CONTAINER, devices)
        for partner in partners:
            _write_devices(write, PARTNER_CONTAINER_PREFIX + partner, (d for d in devices if d.partner == partner))
    return len(uploads)


def _states(devices: Iterable[DeviceRecord]) -> dict[str, tuple[str, str]]:
    return {serial_key(d.serial): (DISPLAY.get(DeviceState(d.state), d.state), d.message) for d in devices}


def _write_upload(
    store: StateStore,
    write: ReportWriter,
    upload: UploadRecord,
    rows: list[RowOutcome],
    states: dict[str, tuple[str, str]],
) -> None:
    latest = store.latest_upload(upload.container, upload.blob_name) in (upload.upload_id, None)
    write_upload_reports(write, upload, rows, states, latest=latest)


def _write_devices(write: ReportWriter, container: str, devices: Iterable[DeviceRecord]) -> None:
    """The list streamed into a temporary file (in memory while small) and written in one put, or in 4 MiB
    blocks once larger: 100,000 devices are 41 MiB of CSV, never held whole."""
    with tempfile.SpooledTemporaryFile(_SPOOL_BYTES) as spool:
        text = io.TextIOWrapper(spool, encoding="utf-8-sig", newline="")
        writer = csv.writer(text, lineterminator="\r\n")
        writer.writerow(DEVICE_COLUMNS)
        for d in devices:
            writer.writerow(device_cells(d))
        text.flush()
        text.detach()
        size = spool.tell()
        spool.seek(0)
        write(container, f"{REPORTS_PREFIX}devices.csv", spool.read() if size <= _SPOOL_BYTES else spool, "text/csv")
