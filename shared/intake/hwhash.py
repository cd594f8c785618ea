"""Offline validation of the Autopilot 4K hardware hash.

A hash that Graph would reject (truncated copies, Excel damage, unpadded base64, a serial pasted next to
another device's hash) costs a round trip and a confusing error minutes later. Decoding the envelope here
rejects it at intake, with a reason an admin can act on, before any call to Graph.

Layout: ``"OA"`` magic, uint16 LE ``total``, records ``(type, 0, uint16 LE length, value)`` tiling exactly
to ``total``, then a checksum record ``"CS" 0x24 0x00`` holding SHA-256 of bytes ``[0, total)``.
"""

from __future__ import annotations

import binascii
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

from pybase64 import b64decode as _b64decode

MAGIC = b"OA"
CHECKSUM_HEADER = b"CS\x24\x00"
CHECKSUM_RECORD_LENGTH = 36
BUFFER_LENGTH = 3000
RECORD_SERIAL = 14
RECORD_MANUFACTURER = 16
RECORD_MODEL = 17
RECORD_OFFLINE_DEVICE_ID = 11
RECORD_TPM_EK = 25

# Characters people and tools wrap around or inside a copied hash; none of them is base64.
_STRIP_CHARS = " \t\r\n\"'\u00a0\ufeff"
_STRIP_TABLE = str.maketrans("", "", _STRIP_CHARS)
_WANTED_RECORDS = frozenset((RECORD_SERIAL, RECORD_MANUFACTURER, RECORD_MODEL, RECORD_OFFLINE_DEVICE_ID, RECORD_TPM_EK))
_TEXT_RECORDS = (RECORD_SERIAL, RECORD_MANUFACTURER, RECORD_MODEL)
_WALK_TILED, _WALK_SHORT_RECORD, _WALK_OVERRUN = 0, 1, 2


class HardwareHashError(ValueError):
    """The hash cannot be a real hardware hash. ``code`` is stable; ``str()`` is for humans."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(slots=True)  # not frozen nor keyword-only: either doubles the cost of the one made per row
class HardwareHash:
    """The parts of a decoded hash that intake and the emulator act on."""

    canonical: str = field(repr=False)  # padded base64, as Graph wants it; never printed
    serial: str | None
    manufacturer: str | None
    model: str | None
    has_tpm: bool
    digest: bytes  # SHA-256 of the hash body (its own checksum): identifies it without keeping it

    @property
    def fingerprint(self) -> str:
        """A short, log-safe identifier: the hash itself is a device identifier and never logged."""
        return self.digest.hex()[:12]


# _check_structure builds HardwareHash positionally, in this order.
if [f.name for f in fields(HardwareHash)] != ["canonical", "serial", "manufacturer", "model", "has_tpm", "digest"]:
    raise ImportError("HardwareHash's fields changed: update the positional call in _check_structure")


def normalize_base64(text: str) -> str:
    """Remove whitespace, quotes and line breaks, and add the ``=`` padding devices sometimes omit."""
    # The common clean hash skips a full-string rewrite; each test is a C scan (a generator over
    # _STRIP_CHARS costs twice as much, a measurable share of a row at 50,000 rows/s).
    if (
        not text.isascii()
        or " " in text
        or "\t" in text
        or "\r" in text
        or "\n" in text
        or '"' in text
        or "'" in text
    ):
        text = text.translate(_STRIP_TABLE)
    remainder = len(text) % 4
    if remainder:
        text += "=" * (4 - remainder)
    return text


def fingerprint(text: str) -> str:
    """A short fingerprint of any hash text, valid or not, for logs and reports."""
    return hashlib.sha256(normalize_base64(text).encode("utf-8", "replace")).hexdigest()[:12]


def _not_base64(detail: str) -> HardwareHashError:
    return HardwareHashError("hash.not_base64", f"the hardware hash is not valid base64 ({detail})")


def decode(text: str) -> HardwareHash:
    """Decode and check a hash; raise :class:`HardwareHashError` naming the first check that fails.

    The whole text is decoded with pybase64 (SIMD, 0.7 us for 4,000 characters; the standard library
    takes 1.6 us for the 800 that hold the records), so every character is checked as base64 and the
    padding is checked as Graph's Edm.Binary reader would: at most two ``=``, only at the end.
    """
    canonical = normalize_base64(text)
    if not canonical:
        raise HardwareHashError("hash.empty", "the hardware hash is empty")
    if len(canonical) % 4 == 1 or len(canonical) > 8 * BUFFER_LENGTH:
        raise _not_base64("wrong length")
    try:
        raw = _b64decode(canonical, validate=True)
    except (binascii.Error, ValueError):
        raise _not_base64("it contains characters outside A-Z a-z 0-9 + / =") from None
    if len(raw) < 4 or raw[:2] != MAGIC:
        raise HardwareHashError(
            "hash.bad_magic",
            "this value is not a Windows hardware hash (it may be another column's value or only its end): "
            "export the device again with Get-WindowsAutopilotInfo and copy the whole Hardware Hash",
        )
    return _check_structure(raw, canonical, len(raw))


def _check_structure(raw: bytes, canonical: str, size: int) -> HardwareHash:
    total = raw[2] | raw[3] << 8
    if total < 4 or total + CHECKSUM_RECORD_LENGTH > min(size, len(raw)):
        raise HardwareHashError(
            "hash.truncated",
            f"the hardware hash is truncated: it declares {total} bytes plus a checksum but holds {size}",
        )
    walked = _walk(raw, total)
    if walked[0] == _WALK_SHORT_RECORD:
        raise HardwareHashError(
            "hash.bad_records",
            f"the hardware hash is damaged: record at byte {walked[1]} has an impossible length {walked[2]}",
        )
    if walked[0] == _WALK_OVERRUN:
        raise HardwareHashError(
            "hash.bad_records",
            f"the hardware hash is damaged: its records run to byte {walked[1]}, not to its stated length {total}",
        )
    _, serial, manufacturer, model, has_tpm = walked
    if raw[total : total + 4] != CHECKSUM_HEADER:
        raise HardwareHashError("hash.no_checksum", "the hardware hash is damaged: its checksum record is missing")
    body_digest = hashlib.sha256(raw[:total]).digest()
    if raw[total + 4 : total + CHECKSUM_RECORD_LENGTH] != body_digest:
        raise HardwareHashError(
            "hash.checksum_mismatch",
            "the hardware hash was altered or mixed up: its SHA-256 checksum does not match its content",
        )
    return HardwareHash(  # positional, in field order
        canonical,
        serial and serial.decode("utf-8", "replace").strip() or None,
        manufacturer and manufacturer.decode("utf-8", "replace").strip() or None,
        model and model.decode("utf-8", "replace").strip() or None,
        has_tpm,
        body_digest,
    )


def _walk_python(raw: bytes | bytearray | memoryview, total: int) -> tuple[Any, ...]:
    """The records from byte 4 to ``total``: ``(0, serial, manufacturer, model, has_tpm)`` when they tile
    exactly (the value of the last record of each type, as bytes without its trailing NULs; None when
    absent), ``(1, pos, length)`` for a record shorter than its own header, ``(2, end)`` when they run past
    ``total``.

    The reference for the compiled walk (``native/hwwalk.c``, about 3 us a row faster: this loop runs ~20
    times a row), and the walk wherever that was not built.
    """
    if total < 4 or total > len(raw) - 4:
        raise ValueError("walk: total must be at least 4 and leave 4 bytes after it")
    found: dict[int, int] = {}
    pos = 4
    while pos < total:  # hot loop: kept to the fewest operations
        length = raw[pos + 2] | raw[pos + 3] << 8
        if length < 4:
            return _WALK_SHORT_RECORD, pos, length
        if raw[pos] in _WANTED_RECORDS:
            found[raw[pos]] = pos
        pos += length
    if pos != total:
        return _WALK_OVERRUN, pos
    has_tpm = RECORD_TPM_EK in found or RECORD_OFFLINE_DEVICE_ID in found
    return _WALK_TILED, *(_value(raw, found.get(kind)) for kind in _TEXT_RECORDS), has_tpm


def _value(raw: bytes | bytearray | memoryview, pos: int | None) -> bytes | None:
    if pos is None:
        return None
    return bytes(raw[pos + 4 : pos + (raw[pos + 2] | raw[pos + 3] << 8)]).rstrip(b"\x00")


try:  # built by `make setup` (native/build.py) where a C compiler is present
    from ._hwwalk import walk as _walk_native
except ImportError:
    _walk_native = None
_walk: Callable[[bytes, int], tuple[Any, ...]] = _walk_native or _walk_python
