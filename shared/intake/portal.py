"""Writing the files the Intune portal accepts: exact header, no quotes, ASCII, CRLF, <= 500 rows each."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from .model import DeviceRow

PORTAL_HEADER = "Device Serial Number,Windows Product ID,Hardware Hash,Group Tag,Assigned User"
TUPLE_HEADER = "Device Serial Number,Windows Product ID,Hardware Hash,Manufacturer name,Device model"
PORTAL_MAX_ROWS = 500


def portal_line(row: DeviceRow) -> str:
    return ",".join(
        [row.serial, row.product_key or "", row.hardware_hash or "", row.group_tag or "", row.assigned_user or ""]
    )


def tuple_line(row: DeviceRow) -> str:
    return ",".join([row.serial, row.product_key or "", "", row.manufacturer or "", row.model or ""])


class ChunkedWriter:
    """Writes ``<stem>-001.csv``, ``<stem>-002.csv``... with at most ``chunk`` rows each."""

    def __init__(self, base: Path, header: str, chunk: int, encoding: str = "ascii") -> None:
        if not 1 <= chunk:
            raise ValueError("chunk must be at least 1")
        self._base, self._header, self._chunk, self._encoding = base, header, chunk, encoding
        self._handle = None
        self._rows_in_file = 0
        self.paths: list[Path] = []
        self.rows = 0

    def write(self, line: str) -> None:
        if self._handle is None or self._rows_in_file >= self._chunk:
            self._open_next()
        assert self._handle is not None
        self._handle.write(line.encode(self._encoding) + b"\r\n")
        self._rows_in_file += 1
        self.rows += 1

    def _open_next(self) -> None:
        self.close()
        path = self._base.with_name(f"{self._base.stem}-{len(self.paths) + 1:03d}{self._base.suffix or '.csv'}")
        self._handle = path.open("wb")
        self._handle.write(self._header.encode("ascii") + b"\r\n")
        self._rows_in_file = 0
        self.paths.append(path)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def __enter__(self) -> ChunkedWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_rows(
    rows: Iterable[DeviceRow], out: Path, chunk: int = PORTAL_MAX_ROWS
) -> tuple[ChunkedWriter, ChunkedWriter]:
    """Hash rows go to ``OUT-NNN.csv`` (ASCII, for the portal); partner tuple rows (no hash) go to
    ``OUT-tuples-NNN.csv`` in UTF-8, since a manufacturer's name must match its firmware exactly."""
    tuples_base = out.with_name(f"{out.stem}-tuples{out.suffix or '.csv'}")
    with (
        ChunkedWriter(out, PORTAL_HEADER, chunk) as hashes,
        ChunkedWriter(tuples_base, TUPLE_HEADER, chunk, "utf-8") as tuples,
    ):
        for row in rows:
            if row.kind == "hash":
                hashes.write(portal_line(row))
            else:
                tuples.write(tuple_line(row))
    return hashes, tuples
