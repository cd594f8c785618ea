"""What intake produces: an accepted device row, a rejected row, or a rejected file.

Each carries the file name and line so an admin can find the row in their own spreadsheet.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Literal, NamedTuple

DeviceKind = Literal["hash", "tuple"]


def serial_key(serial: str) -> str:
    """Serials compare after trimming and case-folding: ``pf3abc `` and ``PF3ABC`` are one device."""
    return serial.strip().casefold()


class RowRef(NamedTuple):
    """Where a row came from. A tuple, not a frozen dataclass: the merge makes one per row, and a frozen
    __init__ costs twice as much."""

    file: str
    line: int
    serial: str


# Not frozen, and not keyword-only: intake makes two per row (the worker's check, the parent's copy), and a
# frozen __init__ or eleven keywords cost three times a positional call (0.9 us against 0.3). The field order is
# held by DEVICE_ROW_FIELDS below.
@dataclass(slots=True)
class DeviceRow:
    """A row that passed every check. ``kind="tuple"`` is the partner path: no hash, registered by
    manufacturer, model and serial."""

    file: str
    line: int
    serial: str
    kind: DeviceKind
    hardware_hash: str | None = field(default=None, repr=False)  # canonical, padded base64
    hash_digest: bytes | None = field(default=None, repr=False)
    product_key: str | None = None
    group_tag: str | None = None
    assigned_user: str | None = None
    manufacturer: str | None = None
    model: str | None = None

    @property
    def key(self) -> str:
        return serial_key(self.serial)

    @property
    def identity(self) -> bytes | tuple[str, str]:
        """What makes two rows with one serial the same device: the hash, or the partner tuple."""
        if self.hash_digest is not None:
            return self.hash_digest
        return ((self.manufacturer or "").casefold(), (self.model or "").casefold())

    @property
    def ref(self) -> RowRef:
        return RowRef(self.file, self.line, self.serial)

    @property
    def fingerprint(self) -> str:
        """Short, log-safe id of the hash (never log the hash itself)."""
        return self.hash_digest.hex()[:12] if self.hash_digest else "-"


@dataclass(frozen=True, slots=True, kw_only=True)
class Rejection:
    """A row (or, with ``line=0``, a whole file) that will not be registered, and why."""

    file: str
    line: int
    serial: str
    code: str
    field: str
    reason: str

    @property
    def message(self) -> str:
        where = f"{self.file}, line {self.line}" if self.line else self.file
        return f"{where}, {self.field}: {self.reason}" if self.field else f"{where}: {self.reason}"

    @property
    def row_message(self) -> str:
        """The message for a report row, which has its own file and line columns."""
        return f"{self.field}: {self.reason}" if self.field else self.reason

    def as_dict(self) -> dict[str, object]:
        return {
            "file": self.file,
            "line": self.line,
            "serial": self.serial,
            "code": self.code,
            "field": self.field,
            "message": self.message,
        }


class FileRejected(Exception):
    """The file cannot be read as a device CSV at all (binary, empty, no serial column...)."""

    def __init__(self, file: str, code: str, reason: str, line: int = 0) -> None:
        super().__init__(reason)
        self.file = file
        self.code = code
        self.reason = reason
        self.line = line

    def as_rejection(self) -> Rejection:
        return Rejection(file=self.file, line=self.line, serial="", code=self.code, field="", reason=self.reason)

    def __str__(self) -> str:
        return self.as_rejection().message


# The order the fast paths construct DeviceRow in (shared/intake/validate.py, shared/intake/parallel.py).
DEVICE_ROW_FIELDS = (
    "file line serial kind hardware_hash hash_digest product_key group_tag assigned_user manufacturer model"
).split()
if [f.name for f in fields(DeviceRow)] != DEVICE_ROW_FIELDS:
    raise ImportError("DeviceRow's fields changed: update DEVICE_ROW_FIELDS and the calls that construct it in order")
