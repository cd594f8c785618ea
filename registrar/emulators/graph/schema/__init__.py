"""Graph's published v1.0 schema, as far as the emulator uses it (``v1_0.json``, made by ``derive.py``)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any


@cache
def v1_0() -> dict[str, Any]:
    return json.loads((Path(__file__).with_name("v1_0.json")).read_text())


def unknown_property(type_name: str, body: Any) -> str | None:
    """The first property of ``body`` that the v1.0 type lacks (annotations such as ``@odata.type`` are not
    properties), or None."""
    if not isinstance(body, dict):
        return None
    known = v1_0()["types"].get(type_name, {})
    return next((name for name in body if "@" not in name and name not in known), None)


def unknown_parameter(binding: str, action: str, body: Any) -> str | None:
    if not isinstance(body, dict):
        return None
    known = v1_0()["boundActions"].get(binding, {}).get(action, [])
    return next((name for name in body if "@" not in name and name not in known), None)
