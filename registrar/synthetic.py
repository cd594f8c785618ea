"""Synthetic hardware hashes and CSVs for tests, benchmarks, samples and the emulator's seeds.

Real hashes are device identifiers and must never be committed; these follow the documented 4K layout
(records 1, 14, 16, 17, 25 and 11 at least, a correct checksum, zero padding to 3,000 bytes) so every
check the intake core makes runs against them for real.
"""

from __future__ import annotations

import base64
import hashlib
import random
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from shared.intake.hwhash import BUFFER_LENGTH, CHECKSUM_HEADER, MAGIC

PORTAL_HEADER = ["Device Serial Number", "Windows Product ID", "Hardware Hash", "Group Tag", "Assigned User"]

_MODELS = [
    ("Contoso Devices", "Surfboard Laptop 7"),
    ("Fabrikam Inc.", "ProBook 450 G10"),
    ("Northwind Traders", "Latitude 7440"),
    ("Tailspin Toys", "ThinkPad T14 Gen 4"),
]


def _record(kind: int, value: bytes) -> bytes:
    return struct.pack("<BBH", kind, 0, len(value) + 4) + value


def _cstr(text: str) -> bytes:
    return text.encode("utf-8") + b"\x00"


def build_hash_bytes(
    serial: str,
    manufacturer: str = "Contoso Devices",
    model: str = "Surfboard Laptop 7",
    *,
    seed: int | None = None,
    with_tpm: bool = True,
    include_serial: bool = True,
    include_manufacturer: bool = True,
) -> bytes:
    """A 3,000-byte decoded hash; deterministic for the same arguments."""
    rng = random.Random(seed if seed is not None else f"{serial}|{manufacturer}|{model}")
    records = [
        _record(1, struct.pack("<8HQBB", 10, 0, 22621, 1, 10, 0, 26100, 2, rng.getrandbits(64), 1, 9)),
        _record(2, struct.pack("<HHH", 1, 8, 16)),
        _record(3, _cstr("GenuineIntel")),
        _record(4, _cstr("Intel(R) Core(TM) i7-1365U")),
        _record(5, struct.pack("<HH", 16, 2)),
        _record(6, struct.pack("<QB", 512 * 1024**3, 17)),
        _record(7, _cstr(f"S{rng.getrandbits(48):012X}")),
        _record(8, struct.pack("<B", 6) + rng.randbytes(6) + "PCI".encode("utf-16-le")),
        _record(10, struct.pack("<BB", 10, 2)),
        _record(12, rng.randbytes(16)),
        _record(13, _cstr("2.0")),
    ]
    if include_serial:
        records.append(_record(14, _cstr(serial)))
    records.append(_record(15, _cstr("Contoso Firmware")))
    if include_manufacturer:
        records.append(_record(16, _cstr(manufacturer)))
    records.append(_record(17, _cstr(model)))
    if with_tpm:
        ek = rng.randbytes(256)
        records.append(_record(25, ek))
        records.append(_record(11, hashlib.sha256(ek).digest()))
    body_records = b"".join(records)
    total = 4 + len(body_records)
    body = MAGIC + struct.pack("<H", total) + body_records
    checksum = CHECKSUM_HEADER + hashlib.sha256(body).digest()
    raw = body + checksum
    return raw + b"\x00" * (BUFFER_LENGTH - len(raw))


def build_hash(serial: str, manufacturer: str = "Contoso Devices", model: str = "Surfboard Laptop 7", **kw) -> str:
    """The base64 text Get-WindowsAutoPilotInfo would write for such a device."""
    return base64.b64encode(build_hash_bytes(serial, manufacturer, model, **kw)).decode("ascii")


@dataclass(frozen=True, slots=True)
class SyntheticDevice:
    serial: str
    manufacturer: str
    model: str
    hardware_hash: str
    product_key: str = ""
    group_tag: str = ""
    assigned_user: str = ""


def devices(count: int, *, prefix: str = "SN", start: int = 0, group_tag: str = "") -> Iterator[SyntheticDevice]:
    """``count`` distinct devices with valid hashes; serials ``{prefix}{n:08d}``."""
    for n in range(start, start + count):
        serial = f"{prefix}{n:08d}"
        manufacturer, model = _MODELS[n % len(_MODELS)]
        yield SyntheticDevice(serial, manufacturer, model, build_hash(serial, manufacturer, model), group_tag=group_tag)


def portal_csv_lines(items: Iterable[SyntheticDevice]) -> Iterator[str]:
    """Lines (without line endings) of a Get-WindowsAutoPilotInfo style CSV."""
    yield ",".join(PORTAL_HEADER)
    for d in items:
        yield ",".join([d.serial, d.product_key, d.hardware_hash, d.group_tag, d.assigned_user])


def write_portal_csv(path, items: Iterable[SyntheticDevice], *, encoding: str = "utf-8", newline: str = "\r\n") -> None:
    with open(path, "w", encoding=encoding, newline="") as fh:
        for line in portal_csv_lines(items):
            fh.write(line + newline)
