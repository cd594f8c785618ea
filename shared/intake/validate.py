"""Row rules: each failure has a stable code (for machines) and a reason an admin can act on."""

from __future__ import annotations

import re

from . import hwhash
from .model import DeviceRow, Rejection, serial_key
from .table import (
    ASSIGNED_USER,
    DISPLAY_NAMES,
    GROUP_TAG,
    HASH,
    MANUFACTURER,
    MODEL,
    PRODUCT_KEY,
    SERIAL,
    Layout,
    Record,
)

MAX_SERIAL = 128
MAX_GROUP_TAG = 128
MAX_PRODUCT_KEY = 64
MAX_NAME = 256

# Printable ASCII without the characters that would break the portal's unquoted CSV.
_SAFE_TEXT = re.compile(r"[ !#-+\--:<-~]+")
GROUP_TAG_PATTERN = re.compile(r"[A-Za-z0-9_.\-]+(?: [A-Za-z0-9_.\-]+)*")
UPN_PATTERN = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+")


class _RowError(Exception):
    def __init__(self, code: str, field: str, reason: str) -> None:
        self.code, self.field, self.reason = code, field, reason


def shown(value: str, limit: int = 40) -> str:
    """A value quoted in a message: bounded, so a 300-character cell does not flood the report."""
    text = value if len(value) <= limit else value[: limit - 1] + "…"
    return f'"{text}"'


def _safe(value: str, name: str, limit: int, code: str, what: str) -> None:
    if len(value) > limit:
        raise _RowError(
            code, name, f"{what} {shown(value)} is {len(value)} characters long; the limit is {limit}: check the column"
        )
    if not _SAFE_TEXT.fullmatch(value):
        raise _RowError(
            code,
            name,
            f"{what} {shown(value)} has characters the Intune portal refuses: use printable ASCII without commas "
            "or quotes",
        )


def validate(record: Record, layout: Layout, file: str) -> DeviceRow | Rejection:
    """Check one record; never raises for bad data."""
    values = record.values
    serial = values.get(SERIAL, "")
    try:
        return _validate(values, serial, layout, file, record.line)
    except _RowError as error:
        label = layout.labels.get(error.field, DISPLAY_NAMES.get(error.field, error.field))
        return Rejection(file=file, line=record.line, serial=serial, code=error.code, field=label, reason=error.reason)


def _validate(values: dict[str, str], serial: str, layout: Layout, file: str, line: int) -> DeviceRow:
    if not serial:
        raise _RowError("serial.missing", SERIAL, "the serial number is empty")
    _safe(serial, SERIAL, MAX_SERIAL, "serial.invalid", "the serial number")
    product_key = values.get(PRODUCT_KEY) or None
    if product_key:
        _safe(product_key, PRODUCT_KEY, MAX_PRODUCT_KEY, "product_key.invalid", "the product ID")
    group_tag = values.get(GROUP_TAG) or None
    if group_tag and (len(group_tag) > MAX_GROUP_TAG or not GROUP_TAG_PATTERN.fullmatch(group_tag)):
        raise _RowError(
            "group_tag.invalid",
            GROUP_TAG,
            f"the group tag {shown(group_tag)} must be 1-{MAX_GROUP_TAG} letters, digits, '-', '_', '.' or single "
            "spaces",
        )
    user = values.get(ASSIGNED_USER) or None
    if user and (len(user) > MAX_NAME or not UPN_PATTERN.fullmatch(user)):
        raise _RowError(
            "user.invalid",
            ASSIGNED_USER,
            f"the assigned user {shown(user)} is not a user principal name like name@contoso.com: fix it or leave "
            "it empty",
        )
    manufacturer = values.get(MANUFACTURER) or None
    model = values.get(MODEL) or None
    for name, value in ((MANUFACTURER, manufacturer), (MODEL, model)):
        if value and (len(value) > MAX_NAME or any(ord(ch) < 32 for ch in value) or "\ufffd" in value):
            raise _RowError(
                f"{name}.invalid", name, f"the {DISPLAY_NAMES[name].lower()} {shown(value)} is not readable text"
            )
    raw_hash = values.get(HASH, "")
    if not raw_hash:
        if manufacturer and model:
            return DeviceRow(
                file=file,
                line=line,
                serial=serial,
                kind="tuple",
                product_key=product_key,
                group_tag=group_tag,
                assigned_user=user,
                manufacturer=manufacturer,
                model=model,
            )
        if HASH in layout.columns:
            raise _RowError("hash.missing", HASH, "the hardware hash is empty (and there is no manufacturer and model)")
        raise _RowError(
            "tuple.incomplete",
            MANUFACTURER if not manufacturer else MODEL,
            "a row without a hardware hash needs the manufacturer, model and serial number",
        )
    try:
        decoded = hwhash.decode(raw_hash)
    except hwhash.HardwareHashError as error:
        raise _RowError(error.code, HASH, str(error)) from None
    if not decoded.serial:
        raise _RowError("hash.no_serial", HASH, "the hardware hash holds no serial number (Graph would refuse it)")
    if not decoded.manufacturer:
        raise _RowError("hash.no_manufacturer", HASH, "the hardware hash holds no manufacturer (Graph would refuse it)")
    if serial_key(decoded.serial) != serial_key(serial):
        raise _RowError(
            "hash.serial_mismatch",
            HASH,
            f"the hash belongs to serial {shown(decoded.serial)}, not {shown(serial)}: this row pairs one device's "
            "serial with another device's hash; take both from the same export",
        )
    return DeviceRow(  # in DEVICE_ROW_FIELDS order: positional is a third of eleven keywords' cost
        file,
        line,
        serial,
        "hash",
        decoded.canonical,  # hardware_hash
        decoded.digest,  # hash_digest
        product_key,
        group_tag,
        user,  # assigned_user
        decoded.manufacturer,
        decoded.model,
    )
