"""Token buckets per app and per tenant, as Intune documents its enrollment budgets."""

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
        # Every admitted write as (time, app): lets tests check any window's total against a budget.
        self.write_log: list[tuple[float, str]] = []

    def reset(self) -> None:
        self._buckets.clear()
        self.write_log.clear()

    def admit(self, app: str, write: bool) -> float | None:
        """Take one token from each bucket the request counts against; otherwise the seconds to wait."""
        config = self._config
        if not config.enabled:
            if write:
                self.write_log.append((self._now(), app))
            return None
        budgets = [(("app-requests", app), config.app_requests), (("tenant-requests", ""), config.tenant_requests)]
        if write:
            budgets += [(("app-writes", app), config.app_writes), (("tenant-writes", ""), config.tenant_writes)]
        now = self._now()
        wait = 0.0
        buckets = []
        for key, capacity in budgets:
            bucket = self._buckets.get(key)
            if bucket is None or bucket.capacity != capacity:
                bucket = self._buckets[key] = _Bucket(capacity, capacity, now)
            rate = capacity / config.window_seconds
            bucket.refill(now, rate)
            if bucket.tokens < 1:
                wait = max(wait, (1 - bucket.tokens) / rate)
            buckets.append(bucket)
        if wait > 0:
            return wait
        for bucket in buckets:
            bucket.tokens -= 1
        if write:
            self.write_log.append((now, app))
        return None


def retry_after_header(wait: float) -> str:
    return str(max(1, math.ceil(wait)))
