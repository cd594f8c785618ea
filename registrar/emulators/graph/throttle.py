"""Throttling per app and per tenant: Intune's enrollment budgets for ``/deviceManagement``, and Entra ID's
separate limits for everything else (devices, groups).

Each limit is a sliding window: at most N units in ANY window of its length. Intune documents plain "N
requests per 20 seconds"; Entra documents a token bucket without its size or refill, and a bucket of N
refilled at N per window would let 2N through in one window. The sliding window is the strict reading.
A refused request is charged too: "all requests accrue against your usage limits" and "Microsoft Graph
continues to log resource usage while a client is being throttled" (learn.microsoft.com/graph/throttling),
so a client that retries before Retry-After only pushes its own wait further out.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from .config import ThrottleConfig


@dataclass(slots=True)
class _Window:
    """What one limit has charged over its last ``seconds``: (time, units), oldest first."""

    capacity: int
    seconds: float
    charges: deque[tuple[float, int]] = field(default_factory=deque)
    total: int = 0

    def expire(self, now: float) -> None:
        charges = self.charges
        while charges and charges[0][0] <= now - self.seconds:
            self.total -= charges.popleft()[1]

    def wait_for(self, units: int, now: float) -> float:
        """Seconds until ``units`` more fit in the window (0: now)."""
        excess = self.total + units - self.capacity
        if excess <= 0:
            return 0.0
        for at, charged in self.charges:  # the oldest charges leave first
            excess -= charged
            if excess <= 0:
                return at + self.seconds - now
        return self.seconds  # more than the whole window holds: wait for an empty one

    def charge(self, units: int, now: float) -> None:
        self.charges.append((now, units))
        self.total += units


class Throttle:
    def __init__(self, config: ThrottleConfig, now: Callable[[], float]) -> None:
        self._config = config
        self._now = now
        self._windows: dict[tuple[str, str], _Window] = {}
        # Every admitted write as (time, app, family): tests check any window's total against a budget.
        self.write_log: list[tuple[float, str, str]] = []

    def reset(self) -> None:
        self._windows.clear()
        self.write_log.clear()

    def admit(self, app: str, write: bool, family: str = "intune", units: int = 1) -> float | None:
        """Charge the request to each limit it counts against; None if it may run, otherwise the seconds
        to wait (counted after charging this refused request as well).

        ``units``: its Entra resource units (:func:`resource_units`), charged to Entra's request limit; a
        write costs one write whatever its units (throttling-limits, identity and access: "Write Cost" 1)."""
        config = self._config
        if not config.enabled:
            if write:
                self.write_log.append((self._now(), app, family))
            return None
        if family == "intune":
            window = config.window_seconds
            limits = [
                (("app-requests", app), config.app_requests, window, 1),
                (("tenant-requests", ""), config.tenant_requests, window, 1),
            ]
            if write:
                limits += [
                    (("app-writes", app), config.app_writes, window, 1),
                    (("tenant-writes", ""), config.tenant_writes, window, 1),
                ]
        else:
            limits = [(("entra-requests", app), config.entra_app_requests, config.entra_requests_window_seconds, units)]
            if write:
                limits += [
                    (("entra-writes", app), config.entra_app_writes, config.entra_window_seconds, 1),
                    (("entra-tenant-writes", ""), config.entra_tenant_writes, config.entra_tenant_window_seconds, 1),
                ]
        now = self._now()
        refused = False
        charged: list[tuple[_Window, int]] = []
        for key, capacity, seconds, cost in limits:
            limit = self._windows.get(key)
            if limit is None or limit.capacity != capacity or limit.seconds != seconds:
                limit = self._windows[key] = _Window(capacity, seconds)
            limit.expire(now)
            cost = min(cost, capacity)
            refused = refused or limit.wait_for(cost, now) > 0
            charged.append((limit, cost))
        for limit, cost in charged:
            limit.charge(cost, now)
        if refused:
            # Refused, and charged all the same: the next try fits once this one's charge has aged too.
            return max(limit.wait_for(cost, now) for limit, cost in charged)
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
