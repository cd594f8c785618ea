"""Intake on several processes, with exactly the output of :func:`~shared.intake.open_devices`.

Why: one core reads about 50,000 rows/s, and most of a row's cost is splitting it and checking its 4 KB
hardware hash, which needs no other row. So worker processes split, validate and check blocks of lines,
while this process keeps what must see the file in order to give the same answer as the one-process path:
decoding (the encoding is sniffed once), reading lines (line numbers, the line-length and file-size
limits), the header, the wrapped-hash rejoin, and whatever the caller does next (the merge). Block k goes
to worker k % n and each worker holds one block at a time, so results come back in order and memory stays
flat whatever the file's size.

Lines travel with their lengths, so a worker reads exactly the lines this process read (a line cut at the
64 KiB limit stays two lines). A quoted value can run over several lines, so a record can continue past
the end of its block: a worker cannot tell, so it stops at that record and this process reads it again
together with the next block.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import signal
import traceback
from collections import deque
from collections.abc import Generator, Iterator
from dataclasses import dataclass, fields
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any, BinaryIO

from .encoding import DEFAULT_MAX_BYTES, open_text
from .model import DeviceRow, FileRejected, Rejection
from .reader import OpenedFile, checked, open_devices, rejoin_wrapped
from .table import Layout, Lines, Record, data_records, read_header

BLOCK_LINES = 1000  # about 4 MB of text: a block's round trip is noise, and memory stays small
# Not fork: the Functions host is multi-threaded, and a forked child inherits locks held by other threads.
START_METHOD = "forkserver"
# This process is the serial part (reading, rebuilding rows, the caller's merge): with as many workers as
# cores, sharing the cores equally starves it and idles the workers (2 cores, 100,000 rows, runs here:
# median 58,000 rows/s at equal priority, 66,000 with the workers at nice 10).
WORKER_NICENESS = 10

_Pair = tuple[DeviceRow | Rejection, bool]
# A checked block as it travels back: rows, the line of a record that may run past the block's end, and a
# file-level rejection (code, reason, line). A rejected row travels as (Rejection, is a hash fragment); an
# accepted row as a tuple of _SHIPPED (pickled dataclasses measured 1.5 times as costly), its hash as an
# offset into the block's text when it is there verbatim (so 4 KB a row does not travel back).
_Result = tuple[list[tuple[Any, ...]], int | None, tuple[str, str, int] | None]
_SHIPPED = "line serial kind hardware_hash hash_digest product_key group_tag assigned_user manufacturer model"
if tuple(f.name for f in fields(DeviceRow)) != ("file", *_SHIPPED.split()):
    raise ImportError("DeviceRow's fields changed: update _ship and _rows in shared/intake/parallel.py")


def open_devices_parallel(
    stream: BinaryIO,
    file: str,
    *,
    workers: int = 2,
    max_bytes: int = DEFAULT_MAX_BYTES,
    block_lines: int = BLOCK_LINES,
) -> OpenedFile:
    """:func:`~shared.intake.open_devices` with ``workers`` processes checking the rows; ``workers=1`` is
    ``open_devices`` itself. The processes start at the first row read and stop when the rows end (or the
    iteration is closed)."""
    if workers <= 1:
        return open_devices(stream, file, max_bytes=max_bytes)
    text, encoding = open_text(stream, file, max_bytes=max_bytes)
    lines, layout, first = read_header(text, file)
    pairs = _outcomes(lines, layout, first, file, workers, block_lines)
    return OpenedFile(file, encoding, layout, rejoin_wrapped(pairs, layout, file))


@dataclass(slots=True)
class _Block:
    text: str  # the lines, joined
    sizes: list[int]  # each line's length
    first_line: int
    final: bool  # nothing follows it: a record still open at its end ends there
    damage: Exception | None = None  # what reading the line after it raised: the file ends with that

    @classmethod
    def of(cls, lines: list[str], first_line: int, final: bool, damage: Exception | None = None) -> _Block:
        return cls("".join(lines), list(map(len, lines)), first_line, final, damage)

    def tail(self, line: int) -> _Block:
        """The lines from number ``line`` on."""
        skip = line - self.first_line
        return _Block(self.text[sum(self.sizes[:skip]) :], self.sizes[skip:], line, self.final, self.damage)

    def then(self, block: _Block) -> _Block:
        """These lines followed by ``block``'s."""
        return _Block(self.text + block.text, self.sizes + block.sizes, self.first_line, block.final, block.damage)


def _blocks(lines: Lines, size: int) -> Iterator[_Block]:
    """The lines after the header, ``size`` at a time, read exactly as ``open_devices`` reads them."""
    buffer: list[str] = []
    first = lines.count + 1
    try:
        for line in lines:
            if len(buffer) == size:
                yield _Block.of(buffer, first, final=False)
                buffer, first = [], lines.count
            buffer.append(line)
    except Exception as error:  # a limit or a read error: the rows before it keep their outcomes first
        yield _Block.of(buffer, first, final=False, damage=error)
        return
    yield _Block.of(buffer, first, final=True)


def _outcomes(
    lines: Lines, layout: Layout, first: Record | None, file: str, workers: int, block_lines: int
) -> Iterator[_Pair]:
    if first is not None:
        yield from checked((first,), layout, file)
    blocks = _blocks(lines, block_lines)
    head = next(blocks)
    if head.final or head.damage is not None:  # the file is one block: not worth starting processes
        results = _checked_here(head, layout, file)
    else:
        results = _checked_by_workers(itertools.chain((head,), blocks), layout, file, workers)
    carry: _Block | None = None  # the end of the last block, from a record that ran past it
    try:
        for block, result in results:
            if carry is not None:  # its worker started it mid-record: read that record and the block here
                block, carry = carry.then(block), None
                result = _check(block, layout, file)
            rows, unfinished, error = result
            yield from _rows(rows, block.text, file)
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
    blocks: Iterator[_Block], layout: Layout, file: str, workers: int
) -> Generator[tuple[_Block, _Result], None, None]:
    """Each block with its worker's result, in order; the next blocks are read while the workers work."""
    pool = _Workers(workers, layout, file)
    try:
        inflight: deque[_Block] = deque(itertools.islice(blocks, workers))
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


def _rows(rows: list[tuple[Any, ...]], text: str, file: str) -> Iterator[_Pair]:
    for row in rows:
        if type(row[0]) is Rejection:
            yield row[0], row[1]
            continue
        line, serial, kind, hardware_hash, size, digest, product_key, group_tag, user, manufacturer, model = row
        if size:
            hardware_hash = text[hardware_hash : hardware_hash + size]
        device = DeviceRow(
            file=file,
            line=line,
            serial=serial,
            kind=kind,
            hardware_hash=hardware_hash,
            hash_digest=digest,
            product_key=product_key,
            group_tag=group_tag,
            assigned_user=user,
            manufacturer=manufacturer,
            model=model,
        )
        yield device, False


class _Workers:
    """``count`` processes; block k goes to process k % count, which answers before it gets another."""

    def __init__(self, count: int, layout: Layout, file: str) -> None:
        context = multiprocessing.get_context(START_METHOD)
        if START_METHOD == "forkserver":  # the server (one per process) imports this module once, before its
            context.set_forkserver_preload(["__main__", __name__])  # first fork: each worker then starts at once
        self._ends: list[Connection] = []
        self._processes: list[BaseProcess] = []
        try:
            for _ in range(count):
                ours, theirs = context.Pipe()
                self._ends.append(ours)
                process = context.Process(target=_serve, args=(theirs, layout, file), name="intake-worker", daemon=True)
                process.start()
                theirs.close()
                self._processes.append(process)
        except BaseException:
            self.close()
            raise

    def send(self, k: int, block: _Block) -> None:
        end = self._ends[k % len(self._ends)]
        payload = block.text.encode("utf-8", "surrogatepass")
        try:
            end.send((block.first_line, block.final, block.sizes, len(payload)))
            _write(end.fileno(), memoryview(payload))
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


def _serve(end: Connection, layout: Layout, file: str) -> None:
    """A worker: blocks in, results out, until the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C is the parent's to handle; it closes the pipe
    os.nice(WORKER_NICENESS)
    buffer = bytearray()  # reused: a fresh 4 MB for each block costs a page fault per 4 KB
    while True:
        try:
            header = end.recv()
            if header is None:
                return
            first_line, final, sizes, size = header
            if size > len(buffer):
                buffer = bytearray(size)
            with memoryview(buffer)[:size] as payload:
                _read(end.fileno(), payload)
                text = str(payload, "utf-8", "surrogatepass")
        except (EOFError, OSError):  # the parent has gone
            return
        try:
            answer: _Result | str = _check(_Block(text, sizes, first_line, final), layout, file)
        except Exception:
            answer = traceback.format_exc()
        try:
            end.send(answer)
        except OSError:  # the parent stopped reading
            return


# Blocks travel as raw bytes on the connection's descriptor: Connection.recv_bytes copies a 4 MB message
# several times (measured 4 us a row in the worker); readv into a reused buffer, then decoding, 1 us.
def _write(fd: int, data: memoryview) -> None:
    while data:
        data = data[os.write(fd, data) :]


def _read(fd: int, into: memoryview) -> None:
    while into:
        count = os.readv(fd, [into])
        if not count:
            raise EOFError
        into = into[count:]


class _Replay:
    """A block's lines again, for :class:`Lines`; ``ended`` once a read found none left."""

    __slots__ = ("_text", "_sizes", "pos", "ended")

    def __init__(self, block: _Block) -> None:
        self._text = block.text
        self._sizes = iter(block.sizes)
        self.pos = 0
        self.ended = False

    def readline(self, limit: int = -1, /) -> str:  # the lines are already within the limit
        size = next(self._sizes, 0)
        if not size:
            self.ended = True
            return ""
        pos = self.pos
        self.pos = pos + size
        return self._text[pos : self.pos]


def _check(block: _Block, layout: Layout, file: str) -> _Result:
    """A block's rows checked, as :func:`open_devices` checks them."""
    source = _Replay(block)
    text, final = block.text, block.final
    rows: list[tuple[Any, ...]] = []
    mark = 0  # where the record being checked starts, or the blank lines before it
    try:
        recs = data_records(Lines(source, file, block.first_line - 1), layout, file)
        for outcome, fragment in checked(recs, layout, file):
            if source.ended and not final:  # cut short by the block's end: left for the next block
                return rows, outcome.line, None
            end = source.pos
            rows.append((outcome, fragment) if type(outcome) is Rejection else _ship(outcome, text, mark, end))
            mark = end
    except FileRejected as error:
        if source.ended and not final:  # found on a record cut short: the whole record may differ
            return rows, error.line, None
        return rows, None, (error.code, error.reason, error.line)
    return rows, None, None


def _ship(row: DeviceRow, text: str, start: int, end: int) -> tuple[Any, ...]:
    """``row`` as a tuple of _SHIPPED, its hash as (offset, size) when it is in ``text[start:end]``."""
    hardware_hash: str | int | None = row.hardware_hash
    size = 0
    if hardware_hash:
        at = text.find(hardware_hash[:16], start, end)  # bounded: an unbounded find costs 0.4 us more
        if at >= 0 and text.startswith(hardware_hash, at):
            hardware_hash, size = at, len(hardware_hash)
    return (
        row.line,
        row.serial,
        row.kind,
        hardware_hash,
        size,
        row.hash_digest,
        row.product_key,
        row.group_tag,
        row.assigned_user,
        row.manufacturer,
        row.model,
    )
