"""Keep reports current as devices move on: the per-upload reports of uploads whose devices changed
state, ``device-uploads/_reports/devices.csv`` for the whole tenant, and each partner's own list."""

from __future__ import annotations

from collections.abc import Callable

from .config import ADMIN_CONTAINER, PARTNER_CONTAINER_PREFIX, REPORTS_PREFIX
from .intake.model import serial_key
from .reports import render_devices_csv, write_upload_reports
from .state import DeviceRecord, StateStore
from .states import DISPLAY, DeviceState

ReportWriter = Callable[[str, str, bytes, str], None]


def refresh_reports(store: StateStore, write: ReportWriter, changed_uploads: set[str], partners: list[str]) -> int:
    devices = sorted(store.all_devices(), key=lambda d: (d.partner, d.profile, d.serial))
    states = {serial_key(d.serial): (DISPLAY.get(DeviceState(d.state), d.state), d.message) for d in devices}
    written = 0
    for upload_id in sorted(changed_uploads):
        upload = store.get_upload(upload_id)
        if upload is None:
            continue
        latest = store.latest_upload(upload.container, upload.blob_name) in (upload_id, None)
        write_upload_reports(write, upload, store.rows_of(upload_id), states, latest=latest)
        written += 1
    write(ADMIN_CONTAINER, f"{REPORTS_PREFIX}devices.csv", render_devices_csv(devices), "text/csv")
    for partner in partners:
        own: list[DeviceRecord] = [d for d in devices if d.partner == partner]
        write(PARTNER_CONTAINER_PREFIX + partner, f"{REPORTS_PREFIX}devices.csv", render_devices_csv(own), "text/csv")
    return written
