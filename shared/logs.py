"""Structured logging: one JSON object per line locally; in Azure the same ``extra`` fields become
Application Insights custom dimensions. Every record about an upload carries ``upload_id`` and every record
about a device carries ``serial`` and ``fingerprint`` (a short hash of the hardware hash), which is how
logs are correlated. A hardware hash itself is never logged; :class:`HashRedactionFilter` is a last line
of defence that masks any long base64 run that slips into a message.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import TextIO

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}
_LONG_BASE64 = re.compile(r"[A-Za-z0-9+/]{200,}={0,2}")


def redact(text: str) -> str:
    return _LONG_BASE64.sub(lambda m: f"<redacted {len(m.group())} chars>", text)


class HashRedactionFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        for key, value in list(vars(record).items()):
            if key not in _STANDARD and isinstance(value, str) and _LONG_BASE64.search(value):
                setattr(record, key, redact(value))
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD:
                entry[key] = value if isinstance(value, (str, int, float, bool, type(None))) else str(value)
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry)


def configure_json_logging(stream: TextIO | None = None, level: int = logging.INFO) -> logging.Handler:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(HashRedactionFilter())
    logger = logging.getLogger("registrar")
    logger.setLevel(level)
    logger.addHandler(handler)
    return handler
