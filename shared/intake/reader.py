"""The intake entry point: a byte stream in, a stream of accepted and rejected rows out."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from .encoding import DEFAULT_MAX_BYTES, Encoding, open_text
from .model import DeviceRow, FileRejected, Rejection
from .table import Layout, records
from .validate import validate


@dataclass(slots=True)
class OpenedFile:
    """A file whose header was understood; iterate it for its rows."""

    file: str
    encoding: Encoding
    layout: Layout
    _rows: Iterator[DeviceRow | Rejection]

    def __iter__(self) -> Iterator[DeviceRow | Rejection]:
        """Rows in order. Damage found mid-file (a huge line, a size limit) ends the file with one
        rejection at that line; the rows before it keep their outcomes."""
        try:
            yield from self._rows
        except FileRejected as error:
            yield error.as_rejection()


def open_devices(stream: BinaryIO, file: str, *, max_bytes: int = DEFAULT_MAX_BYTES) -> OpenedFile:
    """Raise :class:`FileRejected` when the file as a whole is unusable (binary, empty, no header)."""
    text, encoding = open_text(stream, file, max_bytes=max_bytes)
    layout, recs = records(text, file)
    return OpenedFile(file, encoding, layout, (validate(r, layout, file) for r in recs))
