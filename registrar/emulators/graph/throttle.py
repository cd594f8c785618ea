"""Token buckets per app and per tenant: Intune's enrollment budgets for ``/deviceManagement``, and Entra
ID's separate limits for everything else (devices, groups)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from .config import ThrottleConfig


@dataclass(slots=True)
class _Bucket:
    capacity: float
    tokens: float
    updated: float

    def refill(self, now: float, rate: float) -> None:
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * rate)
        self.updated = now


class Throttle:
    def __init__(self, config: ThrottleConfig, now: Callable[[], float]) -> None:
        self._config = config
        self._now = now
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        # Every admitted write as (time, app, family): tests check any window's total against a budget.
        self.write_log: list[tuple[float, str, str]] = []

    def reset(self) -> None:
        self._buckets.clear()
        self.write_log.clear()

    def admit(self, app: str, write: bool, family: str = "intune", units: int = 1) -> float | None:
        """Take the request's cost from each bucket it counts against; otherwise the seconds to wait.

        ``units``: its Entra resource units (:func:`resource_units`), taken from Entra's request bucket; a
        write costs one write whatever its units (throttling-limits, identity and access: "Write Cost" 1)."""
        config = self._config
        if not config.enabled:
            if write:
                self.write_log.append((self._now(), app, family))
            return None
        if family == "intune":
            window = config.window_seconds
            budgets = [
                (("app-requests", app), config.app_requests, window),
                (("tenant-requests", ""), config.tenant_requests, window),
            ]
            if write:
                budgets += [
                    (("app-writes", app), config.app_writes, window),
                    (("tenant-writes", ""), config.tenant_writes, window),
                ]
        else:
            budgets = [(("entra-requests", app), config.entra_app_requests, config.entra_requests_window_seconds)]
            if write:
                budgets.append((("entra-writes", app), config.entra_app_writes, config.entra_window_seconds))
        now = self._now()
        wait = 0.0
        buckets = []
        for key, capacity, seconds in budgets:
            bucket = self._buckets.get(key)
            if bucket is None or bucket.capacity != capacity:
                bucket = self._buckets[key] = _Bucket(capacity, capacity, now)
            rate = capacity / seconds
            bucket.refill(now, rate)
            cost = min(units, capacity) if key[0] == "entra-requests" else 1
            if bucket.tokens < cost:
                wait = max(wait, (cost - bucket.tokens) / rate)
            buckets.append((bucket, cost))
        if wait > 0:
            return wait
        for bucket, cost in buckets:
            bucket.tokens -= cost
        if write:
            self.write_log.append((now, app, family))
        return None


# Entra's base costs that differ from 1 (throttling-limits, "Identity and access service limits": "Any
# requests not listed have a base cost of 1"), for the routes the emulator serves. A path under users/{id}
# costs what the table gives for me/ ("Any request cost that applies to a request path starting with me/
# also applies to equivalent requests starting with users/{id | userPrincipalName}/").
_BASE_RESOURCE_UNITS = {
    "groups.members.list": 3,  # GET groups/{id}/members
    "users.licenseDetails.list": 2,  # GET me/licenseDetails
    "subscribedSkus.list": 3,  # GET subscribedSkus
}


def resource_units(route: str, query: dict[str, str]) -> int:
    """An Entra request's cost in resource units, as the same page counts it: the base cost, 1 less with
    ``$select``, 1 more with ``$expand``, 1 less with ``$top`` under 20, never below 1."""
    units = _BASE_RESOURCE_UNITS.get(route, 1)
    if "$select" in query:
        units -= 1
    if "$expand" in query:
        units += 1
    top = query.get("$top", "")
    if top.isdigit() and int(top) < 20:
        units -= 1
    return max(1, units)


def retry_after_header(wait: float) -> str:
    return str(max(1, math.ceil(wait)))
