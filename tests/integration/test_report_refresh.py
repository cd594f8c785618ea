"""Reports on Azurite as devices change: each upload's report at every run, the device-list exports with
the fleet's full check only (shared/report_refresh.py)."""

import pytest

from shared import report_refresh
from shared.report_refresh import refresh_reports
from shared.states import DeviceState
from shared.storage import blob_service
from tests.helpers import csv_bytes, portal_row
from tests.integration.conftest import upload

pytestmark = [pytest.mark.anyio, pytest.mark.integration]
UPLOAD_REPORT = "_reports/standard/f.csv.result.csv"
EXPORT = "_reports/devices.csv"


def _read(settings, path):
    blob = blob_service(settings).get_blob_client("device-uploads", path)
    return blob.download_blob().readall().decode("utf-8-sig"), blob.get_blob_properties().etag


async def _two_ready_devices(host, settings):
    upload(settings, "device-uploads", "standard/f.csv", csv_bytes([portal_row("PF-1"), portal_row("PF-2")]))
    for _ in range(4):
        await host.step()
    assert {host.runtime.store.get_device(s).state for s in ("PF-1", "PF-2")} == {DeviceState.READY}
    return host.runtime.store.get_device("PF-1").upload_id


def _fail(store, serial):
    def change(record):
        record.state, record.message = DeviceState.FAILED, "Hardware hash not valid"

    store.update_device(serial, change)


@pytest.mark.parametrize("read_all", [False, True])
async def test_upload_reports_follow_each_change_and_the_exports_wait_for_the_full_check(
    host, settings, monkeypatch, read_all
):
    upload_id = await _two_ready_devices(host, settings)
    store, write = host.runtime.store, host.runtime.write_report
    export, export_etag = _read(settings, EXPORT)
    assert "PF-1,standard,,Ready for user" in export
    # Few rows among many devices: read by serial. Lookups dearer than a listing: listed. The same report.
    if read_all:
        monkeypatch.setattr(report_refresh, "KEYS_PER_QUERY", 1)  # 2 lookups against a 1-call listing
    lookups = []
    monkeypatch.setattr(store, "get_devices", lambda serials, get=store.get_devices: lookups.append(1) or get(serials))
    _fail(store, "PF-1")

    assert refresh_reports(store, write, {upload_id}, [], exports=False, devices_known=2) == 1
    assert bool(lookups) is not read_all
    report, _ = _read(settings, UPLOAD_REPORT)
    assert "Hardware hash not valid" in report and "Ready for user" in report  # PF-1 failed, PF-2 still ready
    assert _read(settings, EXPORT) == (export, export_etag)  # not rewritten between full checks

    refresh_reports(store, write, {upload_id}, [], exports=True)
    export, _ = _read(settings, EXPORT)
    assert "PF-1,standard,,Registration failed" in export and "PF-2,standard,,Ready for user" in export


async def test_a_large_export_is_written_in_blocks_and_reads_back_whole(host, settings, monkeypatch):
    upload_id = await _two_ready_devices(host, settings)
    monkeypatch.setattr(report_refresh, "_SPOOL_BYTES", 10)  # as if 41 MiB: staged in blocks, not one put
    refresh_reports(host.runtime.store, host.runtime.write_report, {upload_id}, [], exports=True)
    export, _ = _read(settings, EXPORT)
    assert export.startswith("Serial,Profile,Partner,State") and export.count("\r\n") == 3  # header and two devices
    assert "PF-1,standard,,Ready for user" in export and "PF-2,standard,,Ready for user" in export
