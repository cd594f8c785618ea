"""The shared write budget, applied to every Graph write in one place: a middleware in the SDK's pipeline.

Placed after kiota's retry handler, so a retried write takes from the budget again (Graph counts it
again). A ``$batch`` counts each of its write items, as Graph does ("each counts":
autopilot-graph-facts.md). When the budget cannot give the writes within ``max_wait`` seconds, the
middleware answers 429 with ``Retry-After`` itself, without calling Graph: every caller already treats
429 as "later", so budget exhaustion needs no code path of its own.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Mapping
from urllib.parse import urlsplit

import httpx
from kiota_http.middleware.middleware import BaseMiddleware

from ..budget import WriteBudget

WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})
LOCAL_THROTTLE_HEADER = "x-registrar-budget"
# Set by background work (clean-up) on its requests, removed here before they leave: such writes leave a
# fifth of each budget free for registration and repairs.
BACKGROUND_HEADER = "x-registrar-background"
BACKGROUND_RESERVE = 0.2


def family(path: str) -> str:
    """Which service's budget a Graph path counts against: Intune (deviceManagement) or Entra ID."""
    segments = [s for s in path.split("/") if s]
    if segments and segments[0] in ("v1.0", "beta"):
        segments = segments[1:]
    return "intune" if segments and segments[0] == "deviceManagement" else "entra"


def writes_of(request: httpx.Request) -> dict[str, int]:
    """Writes per budget family that this request costs."""
    path = urlsplit(str(request.url)).path
    if path.rstrip("/").endswith("/$batch"):
        try:
            items = json.loads(request.content or b"{}").get("requests", [])
        except (ValueError, AttributeError):
            return {}
        counts: dict[str, int] = {}
        for item in items:
            if str(item.get("method", "GET")).upper() in WRITE_METHODS:
                name = family(urlsplit(str(item.get("url", ""))).path)
                counts[name] = counts.get(name, 0) + 1
        return counts
    if request.method.upper() in WRITE_METHODS:
        return {family(path): 1}
    return {}


class WriteBudgetHandler(BaseMiddleware):
    def __init__(self, budgets: Mapping[str, WriteBudget], max_wait: float = 10.0) -> None:
        super().__init__()
        self._budgets = budgets
        self._max_wait = max_wait

    async def send(self, request: httpx.Request, transport: httpx.AsyncBaseTransport) -> httpx.Response:
        background = request.headers.pop(BACKGROUND_HEADER, None) is not None
        for name, count in writes_of(request).items():
            budget = self._budgets.get(name)
            if budget is None:
                continue
            reserve = math.ceil(budget.limit.limit * BACKGROUND_RESERVE) if background else 0
            waited = 0.0
            while wait := await asyncio.to_thread(budget.try_acquire, count, reserve):
                if waited + wait > self._max_wait:
                    return httpx.Response(
                        429,
                        headers={"Retry-After": str(math.ceil(wait)), LOCAL_THROTTLE_HEADER: name},
                        json={"error": {"code": "TooManyRequests", "message": f"shared {name} write budget spent"}},
                        request=request,
                    )
                await asyncio.sleep(wait)
                waited += wait
        return await super().send(request, transport)
