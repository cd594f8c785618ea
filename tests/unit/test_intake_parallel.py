"""The parallel intake path (shared/intake/parallel.py) gives exactly what open_devices gives: the same
outcomes in the same order, the same rejections and messages, the same file-level rejections."""

import base64
import io
import multiprocessing

import pytest

from registrar.synthetic import PORTAL_HEADER, build_hash, build_hash_bytes
from shared.intake import DeviceRow, FileRejected, Rejection, open_devices
from shared.intake.merge import Merger
from shared.intake.parallel import BLOCK_BYTES, open_devices_parallel

HEADER = ",".join(PORTAL_HEADER)


def _mixed_lines() -> list[str]:
    """Good rows, with duplicates, a serial conflict, blank lines and row rejections of several kinds in
    between, a hash wrapped without quotes and one wrapped inside quotes (a record over many lines)."""
    lines = [HEADER]
    for n in range(40):
        serial = f"PF-{n:03d}"
        tag = "Sales" if n % 3 else ""
        user = "ann@contoso.com" if n % 5 == 0 else ""
        lines.append(",".join([serial, "PK-7" if n % 7 == 0 else "", build_hash(serial), tag, user]))
        if n % 6 == 2:
            lines.append(lines[-1])  # duplicate
        if n % 9 == 4:
            lines.append("")
    wrapped = build_hash("PF-W01")
    altered = bytearray(build_hash_bytes("PF-101"))
    altered[20] ^= 1  # inside the first record: the checksum no longer matches
    lines += [
        ",".join(["PF-005", "", build_hash("PF-005", seed=7), "", ""]),  # same serial, another hash: conflict
        ",".join(["PF\u00e91", "", build_hash("PF\u00e91"), "", ""]),  # serial.invalid
        ",".join(["PF-100", "", build_hash("PF-100"), "Bad/Tag!", ""]),  # group_tag.invalid
        ",".join(["PF-100", "", build_hash("PF-100"), "", "bob@"]),  # user.invalid
        ",".join(["PF-102", "", "", "", ""]),  # hash.missing
        ",".join(["PF-103", "", "%%%%", "", ""]),  # hash.not_base64
        ",".join(["PF-104", "", build_hash("PF-104")[:300], "", ""]),  # hash.truncated
        ",".join(["PF-105", "", build_hash("PF-106"), "", ""]),  # hash.serial_mismatch
        ",".join(["PF-101", "", base64.b64encode(altered).decode(), "", ""]),  # hash.checksum_mismatch
        ",".join(["", "", build_hash("PF-107"), "", ""]),  # serial.missing
        ",".join(["PF-W01", "", wrapped[:400], "", ""]),  # a hash wrapped without quotes: hash.wrapped
        wrapped[400:1600],
        wrapped[1600:2800],
        wrapped[2800:],
        'PF-Q01,,"' + "\r\n".join(build_hash("PF-Q01")[i : i + 76] for i in range(0, 4000, 76)) + '",,',
        ",".join(["PF-108", "", build_hash("PF-108"), "", ""]),
    ]
    return lines


def _file(lines: list[str], encoding: str = "utf-8", newline: str = "\r\n") -> bytes:
    return (newline.join(lines) + newline).encode(encoding)


def _read(data: bytes, workers: int, block_bytes: int = 5_000, **kwargs) -> tuple[object, object, list]:
    opened = open_devices_parallel(io.BytesIO(data), "up.csv", workers=workers, block_bytes=block_bytes, **kwargs)
    return opened.encoding, opened.layout, list(opened)


def _assert_same(data: bytes, block_bytes: int = 5_000, **kwargs) -> list[DeviceRow | Rejection]:
    single = open_devices(io.BytesIO(data), "up.csv", **kwargs)
    expected = (single.encoding, single.layout, list(single))
    assert _read(data, 2, block_bytes, **kwargs) == expected
    return expected[2]


def _merged(outcomes):
    merger = Merger()
    for outcome in outcomes:
        merger.add(outcome)
    return merger.result()


# 1 byte: a block per line; 12,000: about 3 rows; 33,000: about 8; the default: the whole file in one block.
@pytest.mark.parametrize("block_bytes", [1, 12_000, 33_000, BLOCK_BYTES])
def test_same_outcomes_order_rejections_and_merge(block_bytes):
    data = _file(_mixed_lines())
    outcomes = _assert_same(data, block_bytes)
    codes = {o.code for o in outcomes if isinstance(o, Rejection)}
    assert codes >= {"serial.invalid", "group_tag.invalid", "user.invalid", "hash.missing", "hash.not_base64"}
    assert codes >= {"hash.truncated", "hash.serial_mismatch", "hash.checksum_mismatch", "hash.wrapped"}
    assert any(o.serial == "PF-Q01" and isinstance(o, DeviceRow) for o in outcomes)  # the quoted, wrapped hash
    merged = _merged(outcomes)
    assert merged.duplicates and any(r.code == "serial.conflict" for r in merged.rejected)
    parallel = _read(data, 2, block_bytes)[2]
    assert [o.message for o in _merged(parallel).rejected] == [o.message for o in merged.rejected]


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-8-sig", "cp1252"])
def test_other_encodings(encoding):
    lines = _mixed_lines()
    lines.insert(3, ",".join(["PF-200", "", build_hash("PF-200"), "", "andr\u00e9@contoso.com"]))  # ANSI/UTF-16
    _assert_same(_file(lines, encoding))


def test_lone_cr_line_ends_and_a_headerless_partner_file():
    _assert_same(_file(_mixed_lines(), newline="\r"), block_bytes=16_000)
    partner = ["Contoso Devices,Surfboard Laptop 7,SN-1", "Contoso Devices,,SN-2", "Fabrikam,ProBook,SN-3"]
    assert len(_assert_same(_file(partner), block_bytes=1)) == 3


@pytest.mark.parametrize(
    "tail, code",
    [
        (["PF-900," + "A," * 40_000], "file.line_too_long"),
        (["PF-900" + ",x" * 70], "file.too_many_columns"),
        (['PF-900,,"' + "\r\n".join(["A" * 50_000] * 4) + '",,'], "file.malformed"),  # over the csv field limit
    ],
)
@pytest.mark.parametrize("at", [1, 10])
def test_damage_mid_file_ends_it_the_same_way(tail, code, at):
    lines = _mixed_lines()
    data = _file(lines[:at] + tail + lines[at:])
    for block_bytes in (8_000, 30_000):
        outcomes = _assert_same(data, block_bytes)
        assert outcomes[-1].code == code and outcomes[-1].line == at + 1


def test_a_line_of_many_multibyte_characters_is_one_line_in_both_paths():
    lines = _mixed_lines()  # 80,000 bytes but 40,000 characters: one line, within the 64 Ki-character limit
    data = _file(lines[:5] + ["PF-900," + "\u00e9" * 40_000] + lines[5:])
    for block_bytes in (8_000, 12_000):
        outcomes = _assert_same(data, block_bytes)
        by_line = {o.line: o.serial for o in outcomes}
        assert (by_line[6], by_line[7]) == ("PF-900", "PF-003")  # one line; the next keeps its number


@pytest.mark.parametrize("cut", [-1, 0, 1, 2_000])
def test_the_size_limit_ends_the_file_the_same_way_after_every_row_within_it(cut):
    data = _file(_mixed_lines())
    limit = data.index(b"\n", 100_000) + 1 + cut  # just before, at, just after and well after a line's end
    for block_bytes in (5_000, BLOCK_BYTES):
        outcomes = _assert_same(data, block_bytes, max_bytes=limit)
        assert outcomes[-1].code == "file.too_large"
        last_line_within = data[:limit].count(b"\n")  # lines 1.. end within the limit; the next does not
        assert max(o.line for o in outcomes[:-1]) == last_line_within


def test_a_line_too_long_that_runs_past_the_size_limit_is_refused_as_too_long_in_both_paths():
    lines = _mixed_lines()
    data = _file(lines[:10] + ["PF-900," + "A" * 300_000] + lines[10:])
    start = data.index(b"PF-900,")
    for limit in (start + 270_000, start + 300_000):  # cut inside the long line, after its first 256 KiB
        assert _assert_same(data, 8_000, max_bytes=limit)[-1].code == "file.line_too_long"
    for limit in (start + 1_000, start + 200_000):  # before: the size limit is met first
        assert _assert_same(data, 8_000, max_bytes=limit)[-1].code == "file.too_large"


def test_a_byte_that_is_not_utf8_after_the_sniffed_start_reads_the_same_in_both_paths():
    lines = _mixed_lines()
    lines.insert(30, ",".join(["PF-201", "", build_hash("PF-201"), "", "andr\u00e9@contoso.com"]))
    data = _file(lines[:30]) + _file(lines[30:31], "cp1252") + _file(lines[31:])  # UTF-8 but one ANSI é
    assert data.index(b"andr\xe9") > 64 * 1024  # past the sniffed prefix: the file reads as UTF-8
    outcomes = _assert_same(data, 12_000)
    assert [o.code for o in outcomes if o.serial == "PF-201"] == ["user.invalid"]


@pytest.mark.parametrize(
    "data",
    [
        _file(["Windows Product ID,Hardware Hash", "PK-1," + build_hash("PF-1")]),  # no serial column
        _file(["Name,Colour", "PF-1,blue"]),  # not a device CSV header
        b"",
        b"\x00\x01\x02binary",
    ],
)
def test_file_level_rejections_are_raised_the_same_way(data):
    with pytest.raises(FileRejected) as single:
        open_devices(io.BytesIO(data), "up.csv")
    with pytest.raises(FileRejected) as parallel:
        open_devices_parallel(io.BytesIO(data), "up.csv", workers=2)
    assert str(parallel.value) == str(single.value)
    assert (parallel.value.code, parallel.value.line) == (single.value.code, single.value.line)


def test_one_worker_is_the_one_process_path_and_stopping_early_stops_the_workers():
    data = _file(_mixed_lines())
    opened = open_devices_parallel(io.BytesIO(data), "up.csv", workers=1)
    assert list(opened) == list(open_devices(io.BytesIO(data), "up.csv"))
    assert not multiprocessing.active_children()
    rows = iter(open_devices_parallel(io.BytesIO(data), "up.csv", workers=2, block_bytes=12_000))
    assert next(rows).serial == "PF-000"
    rows.close()
    assert not [p for p in multiprocessing.active_children() if p.name == "intake-worker"]


def _shared_blocks_held() -> list[str]:
    """This process's descriptors and mappings of the blocks it shares with its workers."""
    import os

    fds = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            fds.append(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:  # the descriptor that listed the directory, closed since
            pass
    with open("/proc/self/maps") as maps:
        mapped = [line for line in maps if "registrar-intake-blocks" in line]
    return [f for f in fds if "registrar-intake-blocks" in f] + mapped


def test_the_shared_blocks_are_let_go_after_a_file_and_after_stopping_early():
    # The host ingests upload after upload: ~65 MB of shared blocks kept per file would add up.
    data = _file(_mixed_lines())
    assert list(open_devices_parallel(io.BytesIO(data), "up.csv", workers=2, block_bytes=12_000))
    assert _shared_blocks_held() == []
    rows = iter(open_devices_parallel(io.BytesIO(data), "up.csv", workers=2, block_bytes=12_000))
    next(rows)
    assert _shared_blocks_held()  # while the workers run, the blocks are shared with them
    rows.close()
    assert _shared_blocks_held() == []
