"""Ingest's bookkeeping on disk, so that memory does not grow with the upload.

An upload may hold hundreds of thousands of rows. Ingest must remember, between its two passes over the
blob, which serial it has seen with which hash (to find repeats and conflicts) and every row's outcome
(for the report). Kept in Python objects that is about 0.8 KiB per row; kept in a temporary SQLite file
with a small page cache it is a few MiB whatever the size (``bench/ingest_memory.py``).

The rules are those of :class:`shared.intake.merge.Merger` (which the CLI keeps in memory for
``validate``/``merge``): the same serial with the same hash is one device and its repeats are duplicates;
the same serial with different hashes rejects every row of that serial.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from collections.abc import Iterator
from types import TracebackType

from .intake.model import DeviceRow, Rejection
from .state import RowOutcome

_CACHE_KIB = 2048
_SCHEMA = """
CREATE TABLE serials (key TEXT PRIMARY KEY, identity BLOB NOT NULL, first INTEGER NOT NULL,
                      conflict INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;
CREATE TABLE lines (line INTEGER PRIMARY KEY, key TEXT NOT NULL, serial TEXT NOT NULL);
CREATE INDEX lines_by_key ON lines (key);
CREATE TABLE outcomes (line INTEGER PRIMARY KEY, serial TEXT, outcome TEXT, code TEXT, message TEXT);
"""


class IngestSpool:
    """``with IngestSpool() as spool:`` pass 1 :meth:`classify`, pass 2 :meth:`accepted` +
    :meth:`record`, then :meth:`outcomes` in line order."""

    def __init__(self) -> None:
        handle, self._path = tempfile.mkstemp(prefix="registrar-ingest-", suffix=".sqlite")
        os.close(handle)
        self._db = sqlite3.connect(self._path, isolation_level=None)
        self._db.execute(f"PRAGMA cache_size=-{_CACHE_KIB}")
        self._db.execute("PRAGMA journal_mode=OFF")
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.executescript(_SCHEMA)
        self._db.execute("BEGIN")

    def __enter__(self) -> IngestSpool:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()
        try:
            os.unlink(self._path)
        except FileNotFoundError:
            pass

    # -- pass 1 -----------------------------------------------------------------------------------------------
    def classify(self, outcome: DeviceRow | Rejection) -> None:
        db = self._db
        if isinstance(outcome, Rejection):
            self.record(RowOutcome(outcome.line, outcome.serial, "rejected", outcome.code, outcome.row_message))
            return
        key, identity = outcome.key, _identity(outcome)
        db.execute("INSERT INTO lines VALUES (?, ?, ?)", (outcome.line, key, outcome.serial))
        known = db.execute("SELECT identity, first FROM serials WHERE key = ?", (key,)).fetchone()
        if known is None:
            db.execute("INSERT INTO serials (key, identity, first) VALUES (?, ?, ?)", (key, identity, outcome.line))
        elif known[0] == identity:
            message = f"same device as line {known[1]} of this file"
            self.record(RowOutcome(outcome.line, outcome.serial, "duplicate", "duplicate.in_file", message))
        else:
            db.execute("UPDATE serials SET conflict = 1 WHERE key = ?", (key,))

    def finish_classifying(self) -> None:
        """Every row of a serial seen with different hashes is rejected, naming where they are."""
        db = self._db
        conflicted = db.execute("SELECT key FROM serials WHERE conflict = 1").fetchall()
        for (key,) in conflicted:
            rows = db.execute("SELECT line, serial FROM lines WHERE key = ? ORDER BY line", (key,)).fetchall()
            places = ", ".join(str(line) for line, _ in rows[:10]) + (
                f" and {len(rows) - 10} more" if len(rows) > 10 else ""
            )
            for line, serial in rows:
                reason = (
                    f"Hardware Hash: serial {serial!r} appears with different hardware hashes (lines {places}): "
                    "none is registered until the right one is kept"
                )
                db.execute(
                    "INSERT OR REPLACE INTO outcomes VALUES (?, ?, 'rejected', 'serial.conflict', ?)",
                    (line, serial, reason),
                )

    # -- pass 2 -----------------------------------------------------------------------------------------------
    def accepted(self, line: int) -> bool:
        """Whether this line is the one row kept for its device (first of its serial, no conflict)."""
        found = self._db.execute(
            "SELECT 1 FROM lines JOIN serials ON serials.key = lines.key "
            "WHERE lines.line = ? AND serials.first = ? AND serials.conflict = 0",
            (line, line),
        ).fetchone()
        return found is not None

    def record(self, outcome: RowOutcome) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO outcomes VALUES (?, ?, ?, ?, ?)",
            (outcome.line, outcome.serial, outcome.outcome, outcome.code, outcome.message),
        )

    # -- results ----------------------------------------------------------------------------------------------
    def outcomes(self) -> Iterator[RowOutcome]:
        """Every row's outcome, in line order, read from disk as it is consumed."""
        cursor = self._db.execute("SELECT line, serial, outcome, code, message FROM outcomes ORDER BY line")
        for line, serial, outcome, code, message in cursor:
            yield RowOutcome(line, serial, outcome, code, message)

    def counts(self) -> dict[str, int]:
        return dict(self._db.execute("SELECT outcome, count(*) FROM outcomes GROUP BY outcome").fetchall())


def _identity(row: DeviceRow) -> bytes:
    identity = row.identity
    return identity if isinstance(identity, bytes) else "\x1f".join(identity).encode()
