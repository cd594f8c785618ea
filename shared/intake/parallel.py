"""Intake on several processes, with exactly the output of :func:`~shared.intake.open_devices`.

Why: one core reads about 80,000 rows/s, and most of a row's cost is splitting it and checking its 4 KB
hardware hash, which needs no other row. So worker processes decode, split, validate and check blocks of
lines, while this process keeps what must see the file in order to give the same answer as the
one-process path: the encoding (sniffed once), the header, line numbers, the wrapped-hash rejoin, and
whatever the caller does next (the merge). Block k goes to worker k % n, which holds at most two blocks
(one checked, the next waiting) and answers in order, so results come back in order and memory stays flat
whatever the file's size. Blocks travel through memory shared with the workers (see :class:`_Workers`).

For UTF-8 and ANSI files (nearly all uploads) this process does not even decode: it reads about 4 MB of
whole lines as bytes, counts their line ends, and hands the bytes over; the worker turns them into exactly
the lines ``readline`` would have returned (:func:`~shared.intake.encoding.block_text`), long-line limit
included. UTF-16 and CR-only files are read line by line here, as the one-process path reads them, and
travel as UTF-8.

A quoted value can run over several lines, so a record can continue past the end of its block: a worker
cannot tell, so it stops at that record and this process reads it again together with the next block.
"""

from __future__ import annotations

import itertools
import mmap
import multiprocessing
import os
import signal
import traceback
from collections import deque
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from multiprocessing import reduction
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any, BinaryIO

from .encoding import DEFAULT_MAX_BYTES, AsciiCompatibleLines, block_text, open_text
from .model import DeviceRow, FileRejected, Rejection
from .reader import OpenedFile, checked, open_devices, rejoin_wrapped
from .table import MAX_LINE_CHARS, Layout, Lines, Record, data_records, read_header

BLOCK_BYTES = 4 * 1024 * 1024  # about 1,000 rows: a block's round trip is noise, and memory stays small
# Not fork: the Functions host is multi-threaded, and a forked child inherits locks held by other threads.
START_METHOD = "forkserver"
# This process is the serial part (reading, rebuilding rows, the caller's merge): with as many workers as
# cores, sharing the cores equally starves it and idles the workers (2 cores, 100,000 rows, runs here:
# median 58,000 rows/s at equal priority, 66,000 with the workers at nice 10).
WORKER_NICENESS = 10
# Blocks a worker is sent before it answers the first: it starts the next one while the parent is busy
# (with the shared slots below: 100,000 rows, 6 runs each, median 69,700 rows/s before, 82,100 after).
BLOCKS_PER_WORKER = 2

_Pair = tuple[DeviceRow | Rejection, bool]
# A checked block as it travels back: rows, the line of a record that may run past the block's end, and a
# file-level rejection (code, reason, line). A rejected row travels as (Rejection, is a hash fragment); an
# accepted row as a tuple of its fields after ``file``, in DEVICE_ROW_FIELDS order (pickled dataclasses
# measured 1.5 times as costly), its hash as (offset, size) in the block's bytes when it is there verbatim
# (so 4 KB a row does not travel back).
_Result = tuple[list[tuple[Any, ...]], int | None, tuple[str, str, int] | None]
_HASH_SEARCH_SPAN = 512 * 1024  # how far past the previous row's hash a row's own hash is looked for


def open_devices_parallel(
    stream: BinaryIO,
    file: str,
    *,
    workers: int = 2,
    max_bytes: int = DEFAULT_MAX_BYTES,
    block_bytes: int = BLOCK_BYTES,
) -> OpenedFile:
    """:func:`~shared.intake.open_devices` with ``workers`` processes checking the rows; ``workers=1`` is
    ``open_devices`` itself. The processes start at the first row read and stop when the rows end (or the
    iteration is closed)."""
    if workers <= 1:
        return open_devices(stream, file, max_bytes=max_bytes)
    text, encoding = open_text(stream, file, max_bytes=max_bytes)
    lines, layout, first = read_header(text, file)
    if isinstance(text, AsciiCompatibleLines):
        blocks = _raw_blocks(text, lines.count + 1, block_bytes)
    else:
        blocks = _text_blocks(lines, block_bytes)
    pairs = _outcomes(blocks, layout, first, file, workers, block_bytes)
    return OpenedFile(file, encoding, layout, rejoin_wrapped(pairs, layout, file))


@dataclass(slots=True)
class _Block:
    """Whole lines of the file, as they travel to a worker."""

    data: bytes | bytearray | memoryview  # the lines: as in the file (``codec``: the file's), or as UTF-8
    codec: str
    errors: str
    first_line: int
    final: bool  # nothing follows it: a record still open at its end ends there
    damage: Exception | None = None  # what reading the line after it raised: the file ends with that

    def tail(self, line: int) -> _Block:
        """The lines from number ``line`` on, as bytes of their own."""
        data, at = bytes(self.data), 0
        for _ in range(line - self.first_line):
            at = data.index(b"\n", at) + 1
        return _Block(data[at:], self.codec, self.errors, line, self.final, self.damage)

    def then(self, block: _Block) -> _Block:
        """These lines followed by ``block``'s."""
        data = bytes(self.data) + bytes(block.data)
        return _Block(data, self.codec, self.errors, self.first_line, block.final, block.damage)


def _raw_blocks(text: AsciiCompatibleLines, first_line: int, size: int) -> Iterator[_Block]:
    """The lines after the header, about ``size`` bytes at a time, undecoded."""
    while True:
        raw = text.read_block(size, MAX_LINE_CHARS)
        final = raw.damage is None and len(raw.data) < size
        yield _Block(raw.data, text.codec, text.errors, first_line, final, raw.damage)
        if final or raw.damage is not None:
            return
        first_line += raw.lines


def _text_blocks(lines: Lines, size: int) -> Iterator[_Block]:
    """The lines after the header, read here exactly as ``open_devices`` reads them, as UTF-8."""
    buffer: list[str] = []
    length = 0
    first = lines.count + 1

    def block(final: bool, damage: Exception | None = None) -> _Block:
        return _Block("".join(buffer).encode("utf-8", "surrogatepass"), "utf-8", "surrogatepass", first, final, damage)

    try:
        for line in lines:
            if length >= size:
                yield block(final=False)
                buffer, length, first = [], 0, lines.count
            buffer.append(line)
            length += len(line)
    except Exception as error:  # a limit or a read error: the rows before it keep their outcomes first
        yield block(final=False, damage=error)
        return
    yield block(final=True)


def _outcomes(
    blocks: Iterator[_Block], layout: Layout, first: Record | None, file: str, workers: int, block_bytes: int
) -> Iterator[_Pair]:
    if first is not None:
        yield from checked((first,), layout, file)
    head = next(blocks)
    if head.final or head.damage is not None:  # the file is one block: not worth starting processes
        results = _checked_here(head, layout, file)
    else:
        results = _checked_by_workers(itertools.chain((head,), blocks), layout, file, workers, block_bytes)
    carry: _Block | None = None  # the end of the last block, from a record that ran past it
    try:
        for block, result in results:
            if carry is not None:  # its worker started it mid-record: read that record and the block here
                block, carry = carry.then(block), None
                result = _check(block, layout, file)
            rows, unfinished, error = result
            yield from _rows(rows, block.data, file)
            if error is not None:
                raise FileRejected(file, *error)
            if block.damage is not None:
                raise block.damage
            if unfinished is not None:
                carry = block.tail(unfinished)
    finally:
        results.close()


def _checked_here(block: _Block, layout: Layout, file: str) -> Generator[tuple[_Block, _Result], None, None]:
    yield block, _check(block, layout, file)


def _checked_by_workers(
    blocks: Iterator[_Block], layout: Layout, file: str, workers: int, block_bytes: int
) -> Generator[tuple[_Block, _Result], None, None]:
    """Each block with its worker's result, in order; the next blocks are read while the workers work."""
    pool = _Workers(workers, layout, file, block_bytes)
    try:
        inflight: deque[_Block] = deque(itertools.islice(blocks, workers * BLOCKS_PER_WORKER))
        for k, block in enumerate(inflight):
            pool.send(k, block)
        sent, received = len(inflight), 0
        ahead = next(blocks, None)
        while inflight:
            block = inflight.popleft()
            result = pool.receive(received)
            received += 1
            if ahead is not None:  # to the worker that just answered
                pool.send(sent, ahead)
                inflight.append(ahead)
                sent += 1
                ahead = next(blocks, None)
            yield block, result
    finally:
        pool.close()


def _rows(rows: list[tuple[Any, ...]], data: bytes | bytearray | memoryview, file: str) -> Iterator[_Pair]:
    data = memoryview(data)  # a hash decoded straight from the block: one copy, not two
    for row in rows:
        if type(row[0]) is Rejection:
            yield row[0], row[1]
            continue
        device = DeviceRow(file, *row)
        where = device.hardware_hash
        if type(where) is tuple:  # (offset, size) in the block
            device.hardware_hash = str(data[where[0] : where[0] + where[1]], "ascii")
        yield device, False


class _Workers:
    """``count`` processes sharing one memory area with this one, cut in ``count * BLOCKS_PER_WORKER``
    slots. Block k is copied to slot k % slots and goes to process k % count, which answers in order; a
    slot is written again only after its block was answered.

    Blocks travel through the shared memory, not the pipe: a 4 MB block through a socket costs about 1 ms
    of CPU on each side (1 us a row), a copy into shared memory 0.3 ms on this side only. The area is a
    memfd, handed to each worker as a file descriptor: nothing to name, and the kernel frees it when the
    last process lets go of it, however they end.
    """

    def __init__(self, count: int, layout: Layout, file: str, block_bytes: int) -> None:
        context = multiprocessing.get_context(START_METHOD)
        if START_METHOD == "forkserver":  # the server (one per process) imports this module once, before its
            context.set_forkserver_preload(["__main__", __name__])  # first fork: each worker then starts at once
        # Room for the largest block either reader makes: a raw block is block_bytes plus one line of up to
        # 4 bytes a character; a UTF-16 block is block_bytes characters plus a line, each up to 4 bytes as UTF-8.
        self.slot_bytes = 4 * (block_bytes + MAX_LINE_CHARS)
        self._slots = count * BLOCKS_PER_WORKER
        self._ends: list[Connection] = []
        self._processes: list[BaseProcess] = []
        fd = os.memfd_create("registrar-intake-blocks", os.MFD_CLOEXEC)
        try:
            os.ftruncate(fd, self.slot_bytes * self._slots)  # pages are allocated when first written
            self._shared = mmap.mmap(fd, self.slot_bytes * self._slots)
            for _ in range(count):
                ours, theirs = context.Pipe()
                self._ends.append(ours)
                args = (theirs, layout, file)
                process = context.Process(target=_serve, args=args, name="intake-worker", daemon=True)
                process.start()
                theirs.close()
                self._processes.append(process)
                reduction.send_handle(ours, fd, process.pid)
        except BaseException:
            self.close()
            raise
        finally:
            os.close(fd)

    def send(self, k: int, block: _Block) -> None:
        size = len(block.data)
        if size > self.slot_bytes:  # cannot happen: the readers stop a block well before that
            raise RuntimeError(f"an intake block of {size} bytes does not fit a {self.slot_bytes}-byte slot")
        at = k % self._slots * self.slot_bytes
        self._shared[at : at + size] = block.data
        try:
            self._ends[k % len(self._ends)].send((at, size, block.first_line, block.final, block.codec, block.errors))
        except OSError:
            raise RuntimeError("an intake worker process ended unexpectedly") from None

    def receive(self, k: int) -> _Result:
        try:
            answer = self._ends[k % len(self._ends)].recv()
        except (EOFError, OSError):
            raise RuntimeError("an intake worker process ended unexpectedly") from None
        if isinstance(answer, str):
            raise RuntimeError(f"an intake worker failed:\n{answer}")
        return answer

    def close(self) -> None:
        for end in self._ends:
            try:
                end.send(None)  # a worker waiting for a block stops (with fork, others hold this pipe too)
            except OSError:
                pass
            end.close()  # one still working fails to answer, and stops
        for process in self._processes:
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
                process.join()
        shared = getattr(self, "_shared", None)
        if shared is not None:
            shared.close()


def _serve(end: Connection, layout: Layout, file: str) -> None:
    """A worker: block positions in, results out, until the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C is the parent's to handle; it closes the pipe
    os.nice(WORKER_NICENESS)
    try:
        fd = reduction.recv_handle(end)
    except (EOFError, OSError):  # the parent has gone
        return
    with mmap.mmap(fd, 0) as shared, memoryview(shared) as view:
        os.close(fd)
        while True:
            try:
                header = end.recv()
            except (EOFError, OSError):  # the parent has gone
                return
            if header is None:
                return
            at, size, first_line, final, codec, errors = header
            with view[at : at + size] as data:
                try:
                    answer: _Result | str = _check(_Block(data, codec, errors, first_line, final), layout, file)
                except Exception:
                    answer = traceback.format_exc()
            try:
                end.send(answer)
            except OSError:  # the parent stopped reading
                return


class _Replay:
    """A block's text line by line, for :class:`Lines`, as the file's reader returns lines: a CRLF line
    end read as LF, a line over ``limit`` characters cut there (``Lines`` then refuses it). ``ended``
    once a read found none left."""

    __slots__ = ("_text", "pos", "ended")

    def __init__(self, text: str) -> None:
        self._text = text
        self.pos = 0
        self.ended = False

    def readline(self, limit: int = -1, /) -> str:
        text, pos = self._text, self.pos
        end = text.find("\n", pos) + 1 or len(text)
        if end == pos:
            self.ended = True
            return ""
        self.pos = end
        line = text[pos : end - 2] + "\n" if text.startswith("\r\n", end - 2) and end - 2 >= pos else text[pos:end]
        return line[:limit] if 0 < limit < len(line) else line


def _check(block: _Block, layout: Layout, file: str) -> _Result:
    """A block's rows checked, as :func:`open_devices` checks them."""
    text = block_text(block.data, block.codec, block.errors)
    source = _Replay(text)
    final = block.final
    rows: list[tuple[Any, ...]] = []
    shipped = _Shipper(text, block.data)
    try:
        recs = data_records(Lines(source, file, block.first_line - 1), layout, file)
        for outcome, fragment in checked(recs, layout, file):
            if source.ended and not final:  # cut short by the block's end: left for the next block
                return rows, outcome.line, None
            rows.append((outcome, fragment) if type(outcome) is Rejection else shipped(outcome))
    except FileRejected as error:
        if source.ended and not final:  # found on a record cut short: the whole record may differ
            return rows, error.line, None
        return rows, None, (error.code, error.reason, error.line)
    return rows, None, None


class _Shipper:
    """Rows as tuples of their fields after ``file``, each hash as (offset, size) in the block's bytes when
    it is there verbatim (the usual case), found after the previous one: rows come in file order.

    Offsets are looked for in the block's text when it is ASCII (``isascii`` is a flag on the string, not a
    scan), where a character is a byte. A block with one accented group tag or name is not: its hashes are
    looked for in a copy of its bytes (0.3 ms for 4 MB), not sent back as 4 KB of text each."""

    __slots__ = ("_haystack", "_after")

    def __init__(self, text: str, data: bytes | bytearray | memoryview) -> None:
        self._haystack: str | bytes = text if text.isascii() else bytes(data)
        self._after = 0

    def __call__(self, row: DeviceRow) -> tuple[Any, ...]:
        shipped: str | tuple[int, int] | None = row.hardware_hash
        if row.hardware_hash:  # canonical base64: ASCII
            haystack, after = self._haystack, self._after
            wanted: str | bytes = row.hardware_hash if type(haystack) is str else row.hardware_hash.encode("ascii")
            at = haystack.find(wanted[:16], after, after + _HASH_SEARCH_SPAN)  # type: ignore[arg-type]
            if at >= 0 and haystack.startswith(wanted, at):  # type: ignore[arg-type]
                self._after = at + len(wanted)
                shipped = (at, len(wanted))
        return (
            row.line,
            row.serial,
            row.kind,
            shipped,
            row.hash_digest,
            row.product_key,
            row.group_tag,
            row.assigned_user,
            row.manufacturer,
            row.model,
        )
