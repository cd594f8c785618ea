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

    def admit(self, app: str, write: bool, family: str = "intune") -> float | None:
        """Take one token from each bucket the request counts against; otherwise the seconds to wait."""
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
            if bucket.tokens < 1:
                wait = max(wait, (1 - bucket.tokens) / rate)
            buckets.append(bucket)
        if wait > 0:
            return wait
        for bucket in buckets:
            bucket.tokens -= 1
        if write:
            self.write_log.append((now, app, family))
        return None


def retry_after_header(wait: float) -> str:
    return str(max(1, math.ceil(wait)))
