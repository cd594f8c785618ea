"""Turn an upload's bytes into text without loading it whole.

Admins' files come from PowerShell 5.1 (``Out-File`` writes UTF-16LE, usually with a BOM), PowerShell 7
and Excel (UTF-8, with or without BOM), and older tools (Windows-1252). The encoding is decided from the
first 64 KiB; a later byte that is not UTF-8 in a "UTF-8" file is read as Windows-1252 rather than lost.
"""

from __future__ import annotations

import codecs
import io
from dataclasses import dataclass
from typing import BinaryIO, Protocol

from .model import FileRejected

SNIFF_BYTES = 64 * 1024
DEFAULT_MAX_BYTES = 512 * 1024 * 1024


def _cp1252_fallback(error: UnicodeError) -> tuple[str, int]:
    if not isinstance(error, UnicodeDecodeError):
        raise error
    bad = error.object[error.start : error.end]
    return bad.decode("cp1252", errors="replace"), error.end


codecs.register_error("registrar-cp1252", _cp1252_fallback)


@dataclass(frozen=True, slots=True)
class Encoding:
    codec: str
    label: str
    errors: str = "replace"


UTF8 = Encoding("utf-8", "UTF-8", "registrar-cp1252")
UTF8_BOM = Encoding("utf-8-sig", "UTF-8 with BOM", "registrar-cp1252")
UTF16_LE_BOM = Encoding("utf-16", "UTF-16 LE with BOM")
UTF16_BE_BOM = Encoding("utf-16", "UTF-16 BE with BOM")
UTF16_LE = Encoding("utf-16-le", "UTF-16 LE")
UTF16_BE = Encoding("utf-16-be", "UTF-16 BE")
CP1252 = Encoding("cp1252", "Windows-1252 (ANSI)")


class TextLines(Protocol):
    def readline(self, limit: int = -1, /) -> str: ...


_CONTROL = frozenset(chr(c) for c in range(32)) - {"\t", "\n", "\r", "\x0c"}


def _utf16_without_bom(sample: bytes) -> Encoding | None:
    """PowerShell without BOM: ASCII text in UTF-16 has a NUL in every other byte."""
    probe = sample[:4096]
    pairs = len(probe) // 2
    if pairs < 2:
        return None
    even_nul = probe[0 : pairs * 2 : 2].count(0)
    odd_nul = probe[1 : pairs * 2 : 2].count(0)
    if odd_nul > 0.6 * pairs and even_nul < 0.1 * pairs:
        return UTF16_LE
    if even_nul > 0.6 * pairs and odd_nul < 0.1 * pairs:
        return UTF16_BE
    return None


def detect(sample: bytes, file: str) -> Encoding:
    """Pick the encoding from the file's first bytes, or reject a file that is not text."""
    if sample.startswith(codecs.BOM_UTF8):
        return UTF8_BOM
    if sample.startswith(codecs.BOM_UTF16_LE):
        return UTF16_LE_BOM
    if sample.startswith(codecs.BOM_UTF16_BE):
        return UTF16_BE_BOM
    if sample.startswith(b"PK\x03\x04") or sample.startswith(b"PK\x05\x06"):
        raise FileRejected(
            file, "file.zip", "this is a ZIP archive (or an .xlsx workbook), not a CSV: save or extract it as CSV"
        )
    utf16 = _utf16_without_bom(sample)
    if utf16:
        return utf16
    if b"\x00" in sample:
        raise FileRejected(file, "file.binary", "this is a binary file, not a CSV text file (it contains NUL bytes)")
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=len(sample) < SNIFF_BYTES)
        return UTF8
    except UnicodeDecodeError:
        return CP1252


def _check_text(sample: bytes, encoding: Encoding, file: str) -> None:
    text = sample.decode(encoding.codec, errors="replace")
    controls = sum(1 for ch in text[:8192] if ch in _CONTROL)
    if controls > max(2, len(text[:8192]) // 200):
        raise FileRejected(
            file, "file.binary", "this is a binary file, not a CSV text file (it contains control bytes)"
        )


class _Limited(io.RawIOBase):
    """The sniffed prefix again, then the rest of the stream, up to ``max_bytes``.

    Every byte up to the limit is delivered; the read after it raises if the stream holds more. So every
    line that ends within the limit is read (and keeps its outcome) whoever reads, a line at a time or a
    block at a time, and the file then ends with one "too large" rejection.
    """

    def __init__(self, prefix: bytes, rest: BinaryIO, max_bytes: int, file: str) -> None:
        self._prefix = memoryview(prefix)
        self._rest = rest
        self._remaining = max_bytes - len(prefix)
        self._max = max_bytes
        self._file = file

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if self._prefix:
            n = min(len(buffer), len(self._prefix))
            buffer[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        if self._remaining <= 0:
            if self._rest.read(1):
                raise FileRejected(
                    self._file,
                    "file.too_large",
                    f"the file is larger than the {self._max // (1024 * 1024)} MiB limit: split it into smaller files",
                )
            return 0
        want = min(len(buffer), self._remaining)
        readinto = getattr(self._rest, "readinto", None)
        if readinto is not None:  # straight into the reader's buffer: a 4 MB block is copied once, not twice
            count = readinto(memoryview(buffer)[:want]) or 0
        else:
            chunk = self._rest.read(want)
            count = len(chunk)
            buffer[:count] = chunk
        self._remaining -= count
        return count


class AsciiCompatibleLines:
    """Binary line reading plus a decode per line, for UTF-8 and ANSI files with LF or CRLF endings.

    ``TextIOWrapper`` with universal newlines costs about 7 us per 4 KB row; splitting bytes on LF and
    decoding each line costs under 1 us, which is most of the gap to 50,000 rows/s. Both codecs are
    ASCII-compatible, so a LF byte is always a line end and never inside a character.
    """

    def __init__(self, buffered: io.BufferedReader, encoding: Encoding) -> None:
        self._buffered = buffered
        self.codec = "utf-8" if encoding.codec == "utf-8-sig" else encoding.codec  # the BOM is already skipped
        self.errors = encoding.errors

    def readline(self, limit: int = -1) -> str:
        """Up to ``limit`` characters, as ``TextIOWrapper.readline`` counts them: a UTF-8 character is up
        to 4 bytes, so a line of ``limit`` bytes may hold far fewer characters (a line of 40,000 "é" is
        80,000 bytes and a valid length; 70,000 of them is too long, and must be cut at the limit for the
        caller to refuse it, not read as two lines)."""
        line = self._buffered.readline(limit * 4 if limit > 0 else -1)
        if line.endswith(b"\r\n"):
            line = line[:-2] + b"\n"
        text = line.decode(self.codec, self.errors)
        return text[:limit] if 0 < limit < len(text) else text

    def read_block(self, size: int, line_limit: int) -> RawBlock:
        """At least ``size`` bytes of whole lines as they are in the file (CRLF kept; :func:`block_text`
        decodes them), fewer only at the end of the file; the last line may be cut only where it is longer
        than ``line_limit`` characters (``readline`` cuts it there too).

        Reading stops at the size limit too: then the bytes after the last whole line are dropped, as
        ``readline`` drops them (a line over ``line_limit`` is kept: ``readline`` returns its first
        ``line_limit`` characters before it reaches the limit)."""
        longest = line_limit * 4
        buffer = bytearray(size + longest)
        total, lines, damage = 0, 0, None
        with memoryview(buffer) as view:
            try:
                while total < size:
                    # One read of the stream at most (nothing is lost if the next one raises), in pieces
                    # still in the CPU's cache when their line ends are counted.
                    count = self._buffered.readinto1(view[total : min(size, total + _PIECE)])
                    if not count:
                        break
                    lines += _line_ends(buffer, total, total + count)
                    total += count
                else:
                    begun = total - buffer.rfind(b"\n", 0, total) - 1  # a line not read to its end yet
                    if 0 < begun < longest:  # the rest of it, as far as readline would read it
                        rest = self._buffered.readline(longest - begun)
                        view[total : total + len(rest)] = rest
                        total += len(rest)
                        lines += rest.endswith(b"\n")
            except FileRejected as error:
                damage = error
                begun = total - buffer.rfind(b"\n", 0, total) - 1
                if begun < longest:
                    total -= begun
        del buffer[total:]
        return RawBlock(buffer, lines, damage)


_PIECE = 256 * 1024


def _line_ends(buffer: bytearray, start: int, end: int) -> int:
    """``buffer.count(b"\\n", start, end)``, faster for device rows: ``count`` looks at every byte (1 ms
    for 4 MB here), ``find`` jumps with memchr (0.2 ms at 4 KB a line). Many short lines go to ``count``."""
    found = 0
    at = buffer.find(b"\n", start, end)
    while at >= 0:
        found += 1
        if found == 256:
            return found + buffer.count(b"\n", at + 1, end)
        at = buffer.find(b"\n", at + 1, end)
    return found


@dataclass(frozen=True, slots=True)
class RawBlock:
    """Whole lines of the file as bytes, how many line ends they hold, and what stopped the reading."""

    data: bytearray
    lines: int
    damage: FileRejected | None


def block_text(data: bytes | bytearray | memoryview, codec: str, errors: str) -> str:
    """Lines from :meth:`AsciiCompatibleLines.read_block` decoded as its ``readline`` decodes them, with
    the same error handling: a CR or LF byte is never part of a character in these codecs, so decoding
    lines one by one or together gives the same text. Line ends stay as they are (CRLF): the one who
    reads the lines turns a CRLF into a LF as ``readline`` does (``bytes.replace`` over a 4 MB block costs
    more than reading its rows). ``data`` may be a view of memory shared with another process."""
    return str(data, codec, errors)


def open_text(stream: BinaryIO, file: str, *, max_bytes: int = DEFAULT_MAX_BYTES) -> tuple[TextLines, Encoding]:
    """Text lines ending in ``\\n`` whatever the file used (CRLF, LF or CR)."""
    sample = stream.read(SNIFF_BYTES) or b""
    if not sample.strip(b" \t\r\n\x00\xef\xbb\xbf\xff\xfe"):
        raise FileRejected(file, "file.empty", "the file is empty: it has no header and no device rows")
    encoding = detect(sample, file)
    _check_text(sample, encoding, file)
    if encoding in (UTF8, UTF8_BOM, CP1252) and b"\n" in sample:
        if encoding is UTF8_BOM:
            sample = sample[len(codecs.BOM_UTF8) :]
        buffered = io.BufferedReader(_Limited(sample, stream, max_bytes, file), buffer_size=256 * 1024)
        return AsciiCompatibleLines(buffered, encoding), encoding
    raw = _Limited(sample, stream, max_bytes, file)
    text = io.TextIOWrapper(
        io.BufferedReader(raw, buffer_size=256 * 1024), encoding=encoding.codec, errors=encoding.errors, newline=None
    )
    return text, encoding
