"""Logs never carry a hardware hash; hostile uploads are rejected with a reason and leave other uploads
unaffected."""

import io
import json
import logging
import random
import zipfile

import pytest

from registrar.synthetic import build_hash
from shared.logs import HashRedactionFilter, JsonFormatter
from shared.states import DeviceState
from shared.storage import blob_service
from tests.helpers import csv_bytes, portal_row
from tests.integration.conftest import upload

pytestmark = [pytest.mark.anyio, pytest.mark.integration]


def _everything_logged(records) -> str:
    formatter = JsonFormatter()
    return "\n".join(formatter.format(r) for r in records)


async def test_an_end_to_end_run_never_logs_a_full_hash(host, settings, graph, caplog):
    caplog.set_level(logging.DEBUG)
    serials = [f"LG-{n}" for n in range(5)]
    upload(
        settings,
        "device-uploads",
        "standard/a.csv",
        csv_bytes([portal_row(s) for s in serials] + [portal_row("LG-X", hash_serial="LG-Y")]),
    )
    graph.ctl.configure(faults={"rate_500": 0.3, "seed": 4})  # exercise the retry and warning paths too
    import asyncio

    for _ in range(40):
        await host.step()
        if all((d := host.runtime.store.get_device(s)) and d.state == DeviceState.READY for s in serials):
            break
        await asyncio.sleep(0.5)
    logged = _everything_logged(caplog.records)
    assert "LG-0" in logged and "fingerprint" in logged  # devices are traceable...
    for serial in [*serials, "LG-Y"]:
        text = build_hash(serial)
        assert text[:120] not in logged  # ...by fingerprint only, never by their hash
    upload_ids = {json.loads(line).get("upload_id") for line in logged.splitlines() if '"upload_id"' in line}
    assert len(upload_ids - {None}) == 1  # one correlation id for the upload


def test_redaction_filter_masks_a_hash_that_slips_into_a_message():
    record = logging.LogRecord("registrar.x", logging.INFO, "", 0, "bad %s", (build_hash("S1"),), None)
    record.detail = build_hash("S2")
    HashRedactionFilter().filter(record)
    text = JsonFormatter().format(record)
    assert "<redacted" in text and build_hash("S1")[:100] not in text and build_hash("S2")[:100] not in text


def _zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("devices.csv", csv_bytes([portal_row("ZZ-1")]))
    return buffer.getvalue()


HOSTILE = {
    "random.csv": random.Random(3).randbytes(20_000),
    "zipped.csv": _zip_bytes(),
    "columns.csv": b"Device Serial Number," + b"x," * 2_000_000 + b"\r\n",
    "nul.csv": b"Device Serial Number,Hardware Hash\r\nAB\x00CD,xyz\r\n" + b"\x00" * 5000,
    "surrogates.csv": "Device Serial Number,Hardware Hash\r\n".encode("utf-16-le")
    + b"\x00\xd8\x41\x00" * 50
    + "PF-9,abc\r\n".encode("utf-16-le"),
    "formula.csv": csv_bytes([["=cmd|' /C calc'!A0", "", build_hash("Q1"), "", ""]]),
}


async def test_hostile_uploads_are_rejected_and_do_not_disturb_others(host, settings, graph):
    for name, data in HOSTILE.items():
        upload(settings, "device-uploads", f"standard/{name}", data)
    upload(settings, "device-uploads", "standard/good.csv", csv_bytes([portal_row("GOOD-1"), portal_row("GOOD-2")]))
    for _ in range(4):
        await host.step()
    store = host.runtime.store
    assert store.get_device("GOOD-1").state == DeviceState.READY
    assert store.get_device("GOOD-2").state == DeviceState.READY
    reports = {u.blob_name.split("/")[-1]: u for u in store.all_uploads()}
    expected = {
        "random.csv": "file.binary",
        "zipped.csv": "file.zip",
        "columns.csv": "file.line_too_long",
        "nul.csv": "file.binary",
    }
    for name, code in expected.items():
        assert reports[name].status == "rejected", name
        assert [r.code for r in store.rows_of(reports[name].upload_id)] == [code], name
    surrogate_rows = store.rows_of(reports["surrogates.csv"].upload_id)
    assert surrogate_rows and all(r.outcome == "rejected" and r.message for r in surrogate_rows)
    formula = (
        blob_service(settings)
        .get_blob_client("device-uploads", "_reports/standard/formula.csv.result.csv")
        .download_blob()
        .readall()
        .decode("utf-8-sig")
    )
    assert "'=cmd" in formula
    assert len(graph.ctl.state()["devices"]) == 2


# Names with ".." or "%2e" never reach the app through storage (the service refuses them); routing refuses
# them too (tests/unit/test_routing.py).
@pytest.mark.parametrize(
    "name", ["standard/" + "a" * 600 + ".csv", "stаndard/lookalike.csv", "standard/deep/er.csv", "standard/notes.txt"]
)
async def test_unsafe_blob_names_are_refused(host, settings, name):
    upload(settings, "device-uploads", name, csv_bytes([portal_row("NM-1")]))
    host.poll_uploads()
    store = host.runtime.store
    (uploaded,) = list(store.all_uploads())
    assert uploaded.status == "rejected"
    (row,) = store.rows_of(uploaded.upload_id)
    assert row.code in ("upload.bad_name", "upload.unknown_profile")
    assert store.get_device("NM-1") is None


async def test_oversized_upload_is_rejected_unread(host, settings, azurite, monkeypatch):
    import dataclasses

    small = dataclasses.replace(settings, max_upload_bytes=1024 * 1024)
    host.settings = small
    host.runtime.settings = small
    big = csv_bytes([portal_row(f"BIG-{n}") for n in range(600)])  # ~2.4 MB
    upload(settings, "device-uploads", "standard/big.csv", big)
    upload(settings, "device-uploads", "standard/small.csv", csv_bytes([portal_row("SMALL-1")]))
    for _ in range(3):
        await host.step()
    (big_upload,) = [u for u in host.runtime.store.all_uploads() if u.blob_name.endswith("big.csv")]
    assert big_upload.status == "rejected" and "limit is 1 MiB" in big_upload.reason
    assert host.runtime.store.get_device("SMALL-1").state == DeviceState.READY
