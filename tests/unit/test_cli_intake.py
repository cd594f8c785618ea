"""``python -m registrar validate`` / ``merge`` as an admin runs them: exit codes, output, files."""

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from registrar.synthetic import build_hash, devices, write_portal_csv
from tests.helpers import csv_bytes, portal_row

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "registrar", *args],
        capture_output=True,
        text=True,
        cwd=cwd or ROOT,
        env=env,
        timeout=120,
    )


@pytest.fixture
def uploads(tmp_path: Path) -> tuple[Path, Path]:
    good = tmp_path / "good.csv"
    good.write_bytes(csv_bytes([portal_row("PF-1"), portal_row("PF-2")]))
    mixed = tmp_path / "mixed.csv"
    mixed.write_bytes(
        csv_bytes([portal_row("PF-2"), portal_row("PF-3", hash_serial="PF-9"), portal_row("PF-4")], encoding="utf-16")
    )
    return good, mixed


def test_validate_json_lists_every_row_once(uploads):
    good, mixed = uploads
    result = run("validate", str(good), str(mixed), "--json")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert [(a["serial"], a["line"]) for a in report["accepted"]] == [("PF-1", 2), ("PF-2", 3), ("PF-4", 4)]
    assert [(d["serial"], d["file"]) for d in report["duplicates"]] == [("PF-2", str(mixed))]
    (rejected,) = report["rejected"]
    assert (rejected["serial"], rejected["line"], rejected["code"]) == ("PF-3", 3, "hash.serial_mismatch")
    assert rejected["message"].startswith(f"{mixed}, line 3, Hardware Hash:")
    assert [f["encoding"] for f in report["files"]] == ["UTF-8", "UTF-16 LE with BOM"]


def test_validate_table_and_exit_zero_when_all_good(uploads):
    good, _ = uploads
    result = run("validate", str(good))
    assert result.returncode == 0
    assert "2 accepted, 0 duplicate, 0 rejected" in result.stdout


@pytest.mark.parametrize("content", [None, "binary", "zip"])
def test_invocation_errors_are_one_line_and_exit_2(tmp_path, content):
    path = tmp_path / "x.csv"
    if content == "binary":
        path.write_bytes(random.Random(1).randbytes(4096))
    elif content == "zip":
        path.write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    result = run("validate", str(path))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0]


def test_directory_as_file_is_an_invocation_error(tmp_path):
    result = run("validate", str(tmp_path))
    assert result.returncode == 2 and "Traceback" not in result.stderr


def test_empty_file_is_rejected_and_headers_only_is_noted(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    headers = tmp_path / "headers.csv"
    headers.write_bytes(b"Device Serial Number,Windows Product ID,Hardware Hash\r\n")
    result = run("validate", str(empty), str(headers))
    assert result.returncode == 1
    assert "[file.empty]" in result.stdout
    assert f"note: {headers} has a header but no device rows" in result.stdout
    assert run("validate", str(headers)).returncode == 0


def test_merge_writes_portal_valid_chunks(tmp_path, uploads):
    good, mixed = uploads
    partner = tmp_path / "partner.csv"
    partner.write_bytes(csv_bytes([["Soci\u00e9t\u00e9", "L14", "PF-7"]], header=None, encoding="cp1252"))
    out = tmp_path / "out" / "merged.csv"
    result = run("merge", str(good), str(mixed), str(partner), "-o", str(out), "--chunk", "2")
    assert result.returncode == 1  # one rejected row, still merged the rest
    assert "4 accepted" in result.stdout and "hash.serial_mismatch" in result.stdout
    first = (tmp_path / "out" / "merged-001.csv").read_bytes()
    second = (tmp_path / "out" / "merged-002.csv").read_bytes()
    header = b"Device Serial Number,Windows Product ID,Hardware Hash,Group Tag,Assigned User\r\n"
    for data in (first, second):
        assert data.startswith(header)
        assert b'"' not in data and data.isascii()
        assert data.count(b"\r\n") == data.count(b"\n")
    assert first.count(b"\r\n") == 3 and second.count(b"\r\n") == 2
    assert b"PF-1," in first and b"PF-2," in first and b"PF-4," in second
    tuples = (tmp_path / "out" / "merged-tuples-001.csv").read_text("utf-8")
    assert "PF-7,,,Soci\u00e9t\u00e9,L14" in tuples


def test_merged_output_validates_clean(tmp_path):
    source = tmp_path / "in.csv"
    write_portal_csv(source, devices(7))
    out = tmp_path / "m.csv"
    assert run("merge", str(source), "-o", str(out), "--chunk", "3").returncode == 0
    chunks = sorted(str(p) for p in tmp_path.glob("m-*.csv"))
    assert len(chunks) == 3
    report = json.loads(run("validate", *chunks, "--json").stdout)
    assert len(report["accepted"]) == 7 and not report["rejected"] and not report["duplicates"]


@pytest.mark.slow
def test_100k_row_file_streams_with_flat_memory(tmp_path):
    path = tmp_path / "big.csv"
    with open(path, "w", newline="") as fh:
        fh.write("Device Serial Number,Windows Product ID,Hardware Hash,Group Tag,Assigned User\r\n")
        for n in range(100_000):
            serial = f"BIG{n:07d}"
            fh.write(f"{serial},,{build_hash(serial, seed=n)},,\r\n")
    assert path.stat().st_size > 390_000_000
    # Peak RSS from VmHWM, not ru_maxrss: Linux carries a parent's ru_maxrss into a forked child, so under
    # a pytest worker that has grown to 200 MB the child would report the worker's peak, not its own.
    code = (
        "import re, sys; sys.argv=['registrar','validate','--json',sys.argv[1]];"
        "import registrar.__main__ as m; rc=m.main(sys.argv[1:]);"
        "print(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read())[1], file=sys.stderr); sys.exit(rc)"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, env=env, cwd=ROOT, timeout=600
    )
    assert result.returncode == 0, result.stderr[-500:]
    report = json.loads(result.stdout)
    assert len(report["accepted"]) == 100_000
    peak_kib = int(result.stderr.strip().splitlines()[-1])
    assert peak_kib < 200 * 1024  # the file is 400 MB; only per-serial entries are held
