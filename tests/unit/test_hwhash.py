"""The offline hash checks reject what users actually paste, and read serial/manufacturer/model."""

import base64
import hashlib
import struct

import pytest

from registrar.synthetic import build_hash, build_hash_bytes
from shared.intake import hwhash


def _code(text: str) -> str:
    with pytest.raises(hwhash.HardwareHashError) as info:
        hwhash.decode(text)
    return info.value.code


def test_reads_serial_manufacturer_and_model_from_a_valid_hash():
    decoded = hwhash.decode(build_hash("5CD1234XYZ", "HP", "EliteBook 840 G9"))
    assert (decoded.serial, decoded.manufacturer, decoded.model) == ("5CD1234XYZ", "HP", "EliteBook 840 G9")
    assert decoded.has_tpm
    assert decoded.canonical.startswith("T0")


def test_hash_without_tpm_records_is_flagged():
    assert not hwhash.decode(build_hash("S1", with_tpm=False)).has_tpm


def test_repairs_unpadded_line_wrapped_and_quoted_copies():
    text = base64.b64encode(build_hash_bytes("S1")[:2998]).decode()  # 2998 bytes: base64 ends with '='
    assert text.endswith("=")
    wrapped = '"' + "\r\n".join(text.rstrip("=")[i : i + 76] for i in range(0, len(text), 76)) + '"'
    decoded = hwhash.decode(wrapped)
    assert decoded.serial == "S1"
    assert decoded.canonical == text


def test_a_copy_with_its_zero_tail_trimmed_is_the_same_hash():
    full = build_hash("S1")
    trimmed = full.rstrip("A")
    assert hwhash.decode(trimmed).digest == hwhash.decode(full).digest


@pytest.mark.parametrize(
    "text, code",
    [
        ("", "hash.empty"),
        ("   ", "hash.empty"),
        ("not base64 at all!", "hash.not_base64"),
        ("QUJD" * 10, "hash.bad_magic"),  # valid base64, not a hash
        ("T0" + "A" * 7, "hash.not_base64"),  # length 4n+1 cannot be base64
    ],
)
def test_rejects_values_that_are_not_hashes(text, code):
    assert _code(text) == code


def test_rejects_a_truncated_copy():
    assert _code(build_hash("S1")[:500]) == "hash.truncated"


def test_rejects_excel_damage_inside_the_records():
    raw = bytearray(build_hash_bytes("S1"))
    raw[6] = 0xFF  # a record length byte
    raw[7] = 0x7F
    assert _code(base64.b64encode(bytes(raw)).decode()) == "hash.bad_records"


def test_rejects_a_hash_whose_content_was_altered():
    raw = bytearray(build_hash_bytes("S1"))
    index = bytes(raw).index(b"S1\x00")
    raw[index] = ord("X")  # change the serial inside: checksum no longer matches
    assert _code(base64.b64encode(bytes(raw)).decode()) == "hash.checksum_mismatch"


def test_rejects_a_hash_without_checksum_record():
    raw = bytearray(build_hash_bytes("S1"))
    total = struct.unpack_from("<H", raw, 2)[0]
    raw[total : total + 4] = b"\x00\x00\x00\x00"
    assert _code(base64.b64encode(bytes(raw)).decode()) == "hash.no_checksum"


def test_rejects_a_record_with_length_below_its_header():
    body = b"OA" + struct.pack("<H", 12) + struct.pack("<BBH", 14, 0, 2) + b"\x00" * 4
    raw = body + b"CS\x24\x00" + hashlib.sha256(body).digest()
    assert _code(base64.b64encode(raw).decode()) == "hash.bad_records"


def test_rejects_garbage_in_the_zero_tail():
    text = build_hash("S1")
    assert _code(text[:-10] + "!!!!!!!!!!") == "hash.not_base64"


def test_repr_and_fingerprint_never_show_the_hash():
    text = build_hash("S1")
    decoded = hwhash.decode(text)
    assert text not in repr(decoded)
    assert len(decoded.fingerprint) == 12 and decoded.fingerprint in decoded.digest.hex()
    assert hwhash.fingerprint(text) != hwhash.fingerprint(build_hash("S2"))
