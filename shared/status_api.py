"""The status API's answers: devices (filtered, paged by the state store) and one upload's per-row outcomes.

``partner`` is set by the route a partner's own function key can call (or by the portal from the signed-in
principal), never by a query parameter, so a partner only ever sees its own devices and uploads.

Paging follows the table: ``top`` devices per page in serial order, and ``nextLink`` carries the table's
continuation token (``cursor``). There is no total count: counting would read every device.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from .devices_query import MAX_PAGE, BadQuery, DeviceFilter, device_page, device_view, parse_state
from .reports import upload_document
from .state import StateStore

__all__ = ["BadQuery", "MAX_PAGE", "device_filter", "device_view", "get_upload", "list_devices"]


def _int(value: str | None, name: str, default: int, low: int, high: int) -> int:
    if value in (None, ""):
        return default
    try:
        number = int(value)
    except ValueError:
        raise BadQuery(f"{name} must be a whole number") from None
    if not low <= number <= high:
        raise BadQuery(f"{name} must be between {low} and {high}")
    return number


def device_filter(query: dict[str, str], partner: str | None = None) -> DeviceFilter:
    """The filter a query names; a ``partner`` restriction from the route or principal always wins."""
    wanted = query.get("partner")
    if partner is None:
        partner_filter = None if not wanted else ("" if wanted == "-" else wanted)  # "-": admin uploads
    else:
        partner_filter = partner
    return DeviceFilter(
        state=parse_state(query.get("state")),
        profile=query.get("profile") or None,
        partner=partner_filter,
        upload=query.get("upload") or None,
        serial=(query.get("serial") or "").strip() or None,
    )


def list_devices(store: StateStore, query: dict[str, str], base_url: str, partner: str | None = None) -> dict[str, Any]:
    where = device_filter(query, partner)
    top = _int(query.get("top"), "top", 100, 1, MAX_PAGE)
    page = device_page(store, where, top, query.get("cursor") or None)
    body: dict[str, Any] = {"value": [device_view(d) for d in page.devices], "count": len(page.devices)}
    if page.cursor:
        next_query = {k: v for k, v in query.items() if v and k not in ("cursor", "skip")} | {
            "cursor": page.cursor,
            "top": str(top),
        }
        if partner is not None:
            next_query.pop("partner", None)
        body["nextLink"] = f"{base_url}?{urlencode(next_query)}"
        body["cursor"] = page.cursor
    return body


def get_upload(store: StateStore, upload_id: str, partner: str | None = None) -> dict[str, Any] | None:
    upload = store.get_upload(upload_id)
    if upload is None or (partner is not None and upload.partner != partner):
        return None  # another partner's upload is indistinguishable from a missing one
    return upload_document(upload, store.rows_of(upload_id))
