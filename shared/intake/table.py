"""From text lines to records keyed by our field names, whatever the file's headers and delimiter."""

from __future__ import annotations

import csv
import itertools
import operator
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from .encoding import TextLines
from .model import FileRejected

MAX_LINE_CHARS = 64 * 1024  # a real row is about 4 KB; a longer line is damage or an attack
MAX_FIELDS = 64
_BLANK = " \t\r\n,;"  # a line of only these is an empty row (Excel writes ",,,," for one)

SERIAL = "serial"
PRODUCT_KEY = "product_key"
HASH = "hardware_hash"
GROUP_TAG = "group_tag"
ASSIGNED_USER = "assigned_user"
MANUFACTURER = "manufacturer"
MODEL = "model"

# The names admins see in the portal's template, used in messages when the file had no header.
DISPLAY_NAMES = {
    SERIAL: "Device Serial Number",
    PRODUCT_KEY: "Windows Product ID",
    HASH: "Hardware Hash",
    GROUP_TAG: "Group Tag",
    ASSIGNED_USER: "Assigned User",
    MANUFACTURER: "Manufacturer name",
    MODEL: "Device model",
}

_ALIASES = {
    SERIAL: ["Device Serial Number", "SerialNumber", "Serial Number", "Serial", "Device Serial"],
    PRODUCT_KEY: ["Windows Product ID", "ProductKey", "Product Key", "Windows Product Key", "Product ID"],
    HASH: ["Hardware Hash", "HardwareHash", "hardwareIdentifier", "Hardware Identifier", "4K Hardware Hash"],
    GROUP_TAG: ["Group Tag", "GroupTag", "OrderID", "Order ID"],
    ASSIGNED_USER: ["Assigned User", "AssignedUser", "Assigned User Principal Name", "assignedUserPrincipalName"],
    MANUFACTURER: ["Manufacturer name", "Manufacturer", "ManufacturerName"],
    MODEL: ["Device model", "Model", "DeviceModel", "Model name"],
}


def _fold(header: str) -> str:
    return re.sub(r"[\s_\-\"'\ufeff]+", "", header).casefold()


_BY_FOLDED = {_fold(alias): name for name, aliases in _ALIASES.items() for alias in aliases}

# Headerless partner identifier files: Manufacturer,Model,Serial.
_TUPLE_COLUMNS = (MANUFACTURER, MODEL, SERIAL)


@dataclass(frozen=True, slots=True)
class Layout:
    """Where each of our fields sits in this file's rows, and what the file calls it."""

    delimiter: str
    columns: dict[str, int]
    labels: dict[str, str]
    headerless: bool


@dataclass(slots=True)
class Record:
    line: int
    values: dict[str, str]


class Lines:
    """Line iterator with a physical line counter and a cap on line length (memory stays flat).

    ``count`` is the number of the line last read; ``start`` is the number of the line before the first.
    """

    def __init__(self, text: TextLines, file: str, start: int = 0) -> None:
        self._text = text
        self._file = file
        self.count = start

    def __iter__(self) -> Lines:
        return self

    def __next__(self) -> str:
        line = self._text.readline(MAX_LINE_CHARS)
        if not line:
            raise StopIteration
        self.count += 1
        if len(line) >= MAX_LINE_CHARS and not line.endswith("\n"):
            raise FileRejected(
                self._file,
                "file.line_too_long",
                f"line {self.count} is longer than {MAX_LINE_CHARS} characters: this is not a device CSV row",
                line=self.count,
            )
        return line


def _sniff_delimiter(line: str) -> str:
    counts = {d: line.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _layout(cells: list[str], delimiter: str, file: str, line: int) -> Layout:
    columns: dict[str, int] = {}
    labels: dict[str, str] = {}
    for index, cell in enumerate(cells):
        name = _BY_FOLDED.get(_fold(cell))
        if name and name not in columns:
            columns[name] = index
            labels[name] = cell.strip().strip('"').lstrip("\ufeff")
    if columns:
        if SERIAL not in columns:
            raise FileRejected(
                file,
                "file.no_serial_column",
                "the header has no serial number column (expected 'Device Serial Number' or 'SerialNumber')",
                line=line,
            )
        return Layout(delimiter, columns, labels, headerless=False)
    if len([c for c in cells if c.strip()]) == 3 and len(cells) <= 4:
        return Layout(delimiter, dict(zip(_TUPLE_COLUMNS, range(3))), dict(DISPLAY_NAMES), headerless=True)
    shown = ", ".join(repr(c.strip()) for c in cells[:6])
    raise FileRejected(
        file,
        "file.unrecognised_header",
        f"the first row ({shown}) is not a device CSV header: expected columns such as "
        "'Device Serial Number', 'Windows Product ID', 'Hardware Hash'",
        line=line,
    )


def records(text: TextLines, file: str) -> tuple[Layout, Iterator[Record]]:
    """The file's layout, and its data records in order with the line each starts on."""
    lines, layout, first = read_header(text, file)
    rest = data_records(lines, layout, file)
    return layout, rest if first is None else itertools.chain((first,), rest)


def read_header(text: TextLines, file: str) -> tuple[Lines, Layout, Record | None]:
    """The file's layout from its first non-blank line, the lines after it, and, for a headerless file,
    its first data record (the line that was read as the header)."""
    lines = Lines(text, file)
    head = ""
    for head in lines:
        if head.strip(" \t\r\n,;"):
            break
    else:
        raise FileRejected(file, "file.empty", "the file has no header and no device rows")
    delimiter = _sniff_delimiter(head)
    header_line = lines.count
    header = _split(head, lines, delimiter, file, header_line)
    layout = _layout(header, delimiter, file, header_line)
    first = Record(header_line, _picker(layout)(header)) if layout.headerless else None
    return lines, layout, first


def _split(line: str, lines: Lines, delimiter: str, file: str, start: int) -> list[str]:
    """Cells of the record starting with ``line``.

    The csv module walks every character (about 14 us for a 4 KB hash row), so the two shapes real tools
    write are split with ``str.split`` instead: no quotes at all, and every field quoted without embedded
    quotes (PowerShell's Export-Csv). Anything else, such as a quoted hash wrapped over several lines, goes
    through the csv module, which pulls further lines from ``lines`` as it needs them.
    """
    if '"' not in line:  # split first, then trim the line end from the last cell: one copy of the row, not two
        cells = _split_plain(line, delimiter)
        cells[-1] = cells[-1].rstrip("\r\n")
        return cells
    body = line.rstrip("\r\n")
    if body.startswith('"') and body.endswith('"') and len(body) > 1:
        cells = body[1:-1].split(f'"{delimiter}"')
        if not any('"' in cell for cell in cells):
            return cells
    try:
        return next(csv.reader(_chain(line, lines), delimiter=delimiter, skipinitialspace=True, strict=False))
    except csv.Error as error:
        raise FileRejected(
            file, "file.malformed", f"the CSV is malformed at line {start}: {error}", line=start
        ) from None


def _split_plain(line: str, delimiter: str) -> list[str]:
    """``line.split(delimiter)``: the same cells, found with ``str.find``, which jumps through a 4 KB hash
    with memchr where ``split`` compares every character (1.0 against 1.3 us for a device row)."""
    cells = []
    find = line.find
    start = 0
    while (at := find(delimiter, start)) >= 0:
        cells.append(line[start:at])
        start = at + 1
    cells.append(line[start:])
    return cells


def _chain(first: str, rest: Lines) -> Iterator[str]:
    yield first
    yield from rest


def _picker(layout: Layout) -> Callable[[list[str]], dict[str, str]]:
    """A row's cells to its values by our field names, stripped; missing trailing cells are empty."""
    names = tuple(layout.columns)
    indices = tuple(layout.columns.values())
    width = max(indices) + 1
    pick = operator.itemgetter(*indices)  # C-level gather: this runs once per row

    def values(cells: list[str]) -> dict[str, str]:
        if len(cells) < width:
            cells = cells + [""] * (width - len(cells))
        picked = pick(cells)
        return dict(zip(names, map(str.strip, picked if len(names) > 1 else (picked,))))

    return values


def data_records(lines: Lines, layout: Layout, file: str) -> Iterator[Record]:
    """The records read from ``lines`` (the lines after the header), with the line each starts on."""
    values = _picker(layout)
    delimiter = layout.delimiter
    for line in lines:
        start = lines.count
        if line[0] in _BLANK and not line.strip(_BLANK):  # a row's first character decides most lines
            continue
        cells = _split(line, lines, delimiter, file, start)
        if len(cells) > MAX_FIELDS:
            raise FileRejected(
                file,
                "file.too_many_columns",
                f"line {start} has {len(cells)} columns: this is not a device CSV row",
                line=start,
            )
        yield Record(start, values(cells))
