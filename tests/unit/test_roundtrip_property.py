"""Any list of valid rows, written in any supported encoding and format, survives
parse -> merge -> write -> parse unchanged."""

import io
import string
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from registrar.synthetic import build_hash
from shared.intake import DeviceRow, open_devices
from shared.intake.merge import Merger
from shared.intake.portal import write_rows
from tests.helpers import csv_bytes

serials = st.text(string.ascii_uppercase + string.digits + "-", min_size=1, max_size=20).filter(
    lambda s: s.strip("-") == s
)
tags = st.one_of(st.just(""), st.from_regex(r"[A-Za-z0-9_.\-]{1,20}", fullmatch=True))
users = st.one_of(st.just(""), st.from_regex(r"[a-z]{1,8}@[a-z]{1,8}\.com", fullmatch=True))
devices = st.lists(st.tuples(serials, tags, users), min_size=1, max_size=8, unique_by=lambda t: t[0].casefold())
formats = st.tuples(
    st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "cp1252"]),
    st.sampled_from([",", ";", "\t"]),
    st.sampled_from(["\r\n", "\n", "\r"]),
    st.booleans(),
    st.sampled_from(
        [
            ["Device Serial Number", "Windows Product ID", "Hardware Hash", "Group Tag", "Assigned User"],
            ["SerialNumber", "ProductKey", "HardwareHash", "OrderID", "AssignedUser"],
        ]
    ),
)


def _parse(data: bytes, name: str) -> list[DeviceRow]:
    outcomes = list(open_devices(io.BytesIO(data), name))
    assert all(isinstance(o, DeviceRow) for o in outcomes), outcomes
    return outcomes


def _key(row: DeviceRow):
    return (row.serial, row.hardware_hash, row.group_tag, row.assigned_user, row.manufacturer, row.model)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(devices, formats, st.integers(min_value=1, max_value=5))
def test_valid_rows_round_trip(tmp_path: Path, items, fmt, chunk):
    encoding, delimiter, newline, quote, header = fmt
    rows = [[serial, "", build_hash(serial), tag, user] for serial, tag, user in items]
    parsed = _parse(
        csv_bytes(rows, header=header, delimiter=delimiter, newline=newline, encoding=encoding, quote=quote), "in.csv"
    )
    merger = Merger()
    for row in parsed:
        merger.add(row)
    result = merger.result()
    assert len(result.accepted) == len(items) and not result.rejected and not result.duplicates

    out = tmp_path / f"out-{encoding}-{ord(delimiter)}-{len(newline)}-{quote}-{chunk}.csv"
    hashes, _ = write_rows(parsed, out, chunk)
    back = [row for path in hashes.paths for row in _parse(path.read_bytes(), path.name)]
    assert [_key(r) for r in back] == [_key(r) for r in parsed]
    assert all(len(_parse(p.read_bytes(), p.name)) <= chunk for p in hashes.paths)
    for path in hashes.paths:
        path.unlink()
