"""``dev``'s terminal: a short human line per event that matters, while the JSON log goes to a file."""

from __future__ import annotations

import logging
import sys
from datetime import datetime
from typing import TextIO

from shared.logs import HashRedactionFilter, JsonFormatter


def _counts(record: logging.LogRecord, *names: str) -> str:
    parts = [f"{getattr(record, n)} {n.replace('_', ' ')}" for n in names if getattr(record, n, 0)]
    return ", ".join(parts) or "nothing new"


def _summary(record: logging.LogRecord) -> str | None:
    message = record.getMessage()
    if message == "upload processed":
        return f"upload {str(getattr(record, 'upload_id', ''))[:8]} {getattr(record, 'status', '')}: " + _counts(
            record, "accepted", "duplicates", "moved", "rejected"
        )
    if message == "batch settled":
        outcomes = getattr(record, "outcomes", {}) or {}
        return "register: " + ", ".join(f"{n} {result}" for result, n in sorted(outcomes.items()))
    if message == "reconcile imports" and (getattr(record, "registered", 0) or getattr(record, "failed", 0)):
        return "reconcile: " + _counts(record, "registered", "failed", "pending")
    if message == "fleet reconciled" and any(
        getattr(record, n, 0) for n in ("tags_fixed", "members_added", "members_removed")
    ):
        return "fleet: " + _counts(record, "tags_fixed", "members_added", "members_removed")
    if record.levelno >= logging.WARNING:
        serial = getattr(record, "serial", "")
        return f"{record.levelname.lower()}: {message}" + (f" ({serial})" if serial else "")
    return None


class ConsoleFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return f"{datetime.fromtimestamp(record.created):%H:%M:%S}  {_summary(record)}"


class _Interesting(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return _summary(record) is not None


def configure_dev_logging(log_file: str, console: TextIO | None = None) -> None:
    """JSON lines (every record, hashes redacted) to ``log_file``; one human line per event to the terminal."""
    logger = logging.getLogger("registrar")
    logger.setLevel(logging.INFO)
    to_file = logging.FileHandler(log_file, encoding="utf-8")
    to_file.setFormatter(JsonFormatter())
    to_file.addFilter(HashRedactionFilter())
    to_terminal = logging.StreamHandler(console or sys.stdout)
    to_terminal.setFormatter(ConsoleFormatter())
    to_terminal.addFilter(_Interesting())
    to_terminal.addFilter(HashRedactionFilter())
    logger.addHandler(to_file)
    logger.addHandler(to_terminal)
    logger.propagate = False
