"""host.json, read as the Functions host reads it, so the local host runs the app under the same settings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HOST_JSON = Path(__file__).resolve().parents[2] / "host.json"
# Flex Consumption's default functionTimeout when host.json sets none (30 minutes).
DEFAULT_FUNCTION_TIMEOUT = 30 * 60.0


def read(path: Path = HOST_JSON) -> dict[str, Any]:
    return json.loads(path.read_text())


def function_timeout_seconds(path: Path = HOST_JSON) -> float:
    """``functionTimeout`` ("hh:mm:ss"): past it, the host stops the invocation and counts it as failed."""
    text = read(path).get("functionTimeout")
    if not text:
        return DEFAULT_FUNCTION_TIMEOUT
    hours, minutes, seconds = (float(part) for part in str(text).split(":"))
    return hours * 3600 + minutes * 60 + seconds
