"""The intake entry point: a byte stream in, a stream of accepted and rejected rows out."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from .encoding import DEFAULT_MAX_BYTES, Encoding, open_text
from .model import DeviceRow, FileRejected, Rejection
from .table import DISPLAY_NAMES, HASH, SERIAL, Layout, Record, records
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
    return OpenedFile(file, encoding, layout, rejoin_wrapped(checked(recs, layout, file), layout, file))


def checked(recs: Iterable[Record], layout: Layout, file: str) -> Iterator[tuple[DeviceRow | Rejection, bool]]:
    """Each record's outcome, and whether the record may be the rest of a hash wrapped without quotes (a
    line of bare base64, which always fails validation, so only rejected records are looked at)."""
    for record in recs:
        outcome = validate(record, layout, file)
        yield outcome, type(outcome) is Rejection and _is_fragment(record)


_FRAGMENT = re.compile(r"[A-Za-z0-9+/]{16,}={0,2}")


def _is_fragment(record: Record) -> bool:
    """A line holding nothing but a run of base64: the rest of a hash that was wrapped without quotes."""
    serial = record.values.get(SERIAL, "")
    return bool(_FRAGMENT.fullmatch(serial)) and not any(v for k, v in record.values.items() if k != SERIAL)


def rejoin_wrapped(
    pairs: Iterator[tuple[DeviceRow | Rejection, bool]], layout: Layout, file: str
) -> Iterator[DeviceRow | Rejection]:
    """An unquoted hash wrapped over several lines (pasted from mail) would be one rejection per fragment,
    each with a base64 "serial". Say it once, at the row where the hash starts, and name the lines.

    ``pairs`` are outcomes in order, each with whether its record is such a fragment (:func:`checked`)."""
    held: DeviceRow | Rejection | None = None
    continued: list[int] = []  # the lines that continue the held row's hash

    def wrapped(held: DeviceRow | Rejection) -> Rejection:
        lines = f"line {continued[0]}" if len(continued) == 1 else f"lines {continued[0]}-{continued[-1]}"
        return Rejection(
            file=file,
            line=held.line,
            serial=held.serial,
            code="hash.wrapped",
            field=layout.labels.get(HASH, DISPLAY_NAMES[HASH]),
            reason=f"the hash starting at line {held.line} continues on {lines}: quote it or join the lines",
        )

    # Every row passes here: the usual one (not a fragment, nothing continued) costs two tests and a yield.
    try:
        for outcome, fragment in pairs:
            if (
                fragment
                and isinstance(held, Rejection)
                and held.code.startswith("hash.")
                and (not continued or continued[-1] == outcome.line - 1)
            ):
                continued.append(outcome.line)
                continue
            if continued:
                yield wrapped(held)  # type: ignore[arg-type]  # continued only follows a held rejection
                continued = []
            elif held is not None:
                yield held
            held = outcome
    except FileRejected:  # the file ends in damage: the row held back keeps its outcome first
        if held is not None:
            yield wrapped(held) if continued else held
        raise
    if held is not None:
        yield wrapped(held) if continued else held
