"""The compiled record walk (native/hwwalk.c) answers exactly as the Python walk it replaces.

Intake uses the compiled walk where `make setup` could build it and the Python one elsewhere (Azure's
remote build, a machine without a C compiler): an admin must get the same accepted rows and the same
rejection reasons either way. These tests feed both walks valid hashes, hashes damaged the ways users damage
them, and arbitrary bytes, and compare every answer.
"""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registrar.synthetic import build_hash_bytes
from shared.intake import hwhash

native = pytest.importorskip(
    "shared.intake._hwwalk", reason="the compiled walk is not built here (no C compiler): `make setup` builds it"
)


def _both(raw: bytes, total: int) -> tuple:
    expected = hwhash._walk_python(raw, total)
    assert native.walk(raw, total) == expected
    assert native.walk(bytearray(raw), total) == expected  # decode() passes bytes; any contiguous buffer works
    assert native.walk(memoryview(raw), total) == expected
    return expected


def _total(raw: bytes) -> int:
    return struct.unpack_from("<H", raw, 2)[0]


def test_intake_uses_the_compiled_walk_when_it_is_built():
    assert hwhash._walk is native.walk


def test_a_valid_hash_gives_the_same_values():
    raw = build_hash_bytes("5CD1234XYZ", "HP", "EliteBook")
    assert _both(raw, _total(raw)) == (0, b"5CD1234XYZ", b"HP", b"EliteBook", True)


def test_missing_records_and_no_tpm_agree():
    raw = build_hash_bytes("S1", with_tpm=False, include_serial=False, include_manufacturer=False)
    assert _both(raw, _total(raw)) == (0, None, None, b"Surfboard Laptop 7", False)


def test_a_repeated_record_type_keeps_the_last_one_in_both():
    first, last = struct.pack("<BBH", 14, 0, 6) + b"A\x00", struct.pack("<BBH", 14, 0, 7) + b"B\x00\x00"
    body = b"OA" + struct.pack("<H", 4 + len(first) + len(last)) + first + last
    assert _both(body + b"\x00" * 40, len(body))[1] == b"B"


def test_only_trailing_nuls_are_cut_and_an_empty_value_is_empty_bytes():
    inner = struct.pack("<BBH", 16, 0, 9) + b"H\x00P\x00\x00"  # a NUL inside stays
    empty = struct.pack("<BBH", 17, 0, 6) + b"\x00\x00"
    body = b"OA" + struct.pack("<H", 4 + len(inner) + len(empty)) + inner + empty
    assert _both(body + b"\x00" * 40, len(body)) == (0, None, b"H\x00P", b"", False)


def test_a_record_shorter_than_its_header_and_an_overrun_agree():
    short = b"OA" + struct.pack("<H", 12) + struct.pack("<BBH", 14, 0, 2) + b"\x00" * 44
    assert _both(short, 12) == (1, 4, 2)
    overrun = b"OA" + struct.pack("<H", 8) + struct.pack("<BBH", 14, 0, 9) + b"\x00" * 44
    assert _both(overrun, 8) == (2, 13)


@pytest.mark.parametrize("total", [3, 0, -1, 97])
def test_a_total_outside_the_buffer_is_refused_by_both(total):
    raw = b"OA" + b"\x00" * 98  # 100 bytes: a total over 96 leaves no room for the checksum header
    with pytest.raises(ValueError):
        hwhash._walk_python(raw, total)
    with pytest.raises(ValueError):
        native.walk(raw, total)


@settings(max_examples=400, deadline=None)
@given(seed=st.integers(0, 2**32), damage=st.lists(st.tuples(st.integers(0, 2999), st.integers(0, 255)), max_size=6))
def test_damaged_hashes_give_the_same_answer(seed, damage):
    raw = bytearray(build_hash_bytes(f"S{seed}", seed=seed))
    total = _total(raw)
    for index, value in damage:  # damage anywhere, the record lengths included
        raw[index % total] = value
    _both(bytes(raw), total)


@settings(max_examples=400, deadline=None)
@given(data=st.binary(min_size=8, max_size=400), total=st.integers(4, 396))
def test_arbitrary_bytes_give_the_same_answer(data, total):
    if total > len(data) - 4:
        return
    _both(data, total)
