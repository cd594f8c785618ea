"""Merging uploads: every input row ends in exactly one of accepted, duplicate or rejected."""

import io

from registrar.synthetic import build_hash
from shared.intake import open_devices
from shared.intake.merge import Merger
from tests.helpers import csv_bytes, portal_row


def _merge(*files: tuple[str, list[list[str]]]):
    merger = Merger()
    total = 0
    for name, rows in files:
        for outcome in open_devices(io.BytesIO(csv_bytes(rows)), name):
            merger.add(outcome)
            total += 1
    result = merger.result()
    assert result.total == total  # nothing dropped, nothing counted twice
    return result


def test_same_serial_same_hash_is_kept_once_and_reported():
    result = _merge(
        ("a.csv", [portal_row("PF-1"), portal_row("PF-2")]), ("b.csv", [portal_row(" pf-1 ", hash_serial="PF-1")])
    )
    assert [(r.file, r.serial) for r in result.accepted] == [("a.csv", "PF-1"), ("a.csv", "PF-2")]
    (duplicate,) = result.duplicates
    assert (duplicate.ref.file, duplicate.ref.line, duplicate.kept.file, duplicate.kept.line) == (
        "b.csv",
        2,
        "a.csv",
        2,
    )


def test_same_serial_with_different_hashes_rejects_every_copy():
    other = ["PF-1", "", build_hash("PF-1", seed=5), "", ""]
    result = _merge(("a.csv", [portal_row("PF-1"), portal_row("PF-2")]), ("b.csv", [other, portal_row("PF-1")]))
    assert [r.serial for r in result.accepted] == ["PF-2"]
    assert sorted((r.file, r.line) for r in result.rejected) == [("a.csv", 2), ("b.csv", 2), ("b.csv", 3)]
    assert {r.code for r in result.rejected} == {"serial.conflict"}
    assert "a.csv line 2" in result.rejected[0].reason and "b.csv line 2" in result.rejected[0].reason


def test_invalid_rows_are_counted_as_rejected():
    result = _merge(("a.csv", [portal_row("PF-1"), portal_row("PF-2", hash_serial="PF-3")]))
    assert [r.serial for r in result.accepted] == ["PF-1"]
    assert [r.code for r in result.rejected] == ["hash.serial_mismatch"]


def test_tuple_rows_deduplicate_on_manufacturer_and_model():
    merger = Merger()
    rows = [["Contoso", "L7", "PF-1"], ["contoso", "l7", "PF-1"], ["Fabrikam", "X", "PF-2"], ["Other", "X", "PF-2"]]
    for outcome in open_devices(io.BytesIO(csv_bytes(rows, header=None)), "t.csv"):
        merger.add(outcome)
    result = merger.result()
    assert [r.serial for r in result.accepted] == ["PF-1"]
    assert len(result.duplicates) == 1 and [r.code for r in result.rejected] == ["serial.conflict"] * 2
