"""Seeded fault injection: the same seed and request order give the same faults."""

from __future__ import annotations

import random
from dataclasses import dataclass

from .config import FaultConfig


@dataclass(slots=True)
class Fault:
    status: int | None = None  # 500, 503 or 504
    drop: bool = False
    latency: float = 0.0


class FaultInjector:
    def __init__(self, config: FaultConfig) -> None:
        self._config = config
        self._rng = random.Random(config.seed)
        self._seed = config.seed
        self.injected: dict[str, int] = {"500": 0, "503": 0, "504": 0, "drop": 0, "after_write": 0, "412": 0, "429": 0}

    def reset(self) -> None:
        self._rng = random.Random(self._config.seed)
        self._seed = self._config.seed
        self.injected = dict.fromkeys(self.injected, 0)

    def draw(self, allow_drop: bool = True) -> Fault:
        config = self._config
        if config.seed != self._seed:
            self.reset()
        fault = Fault(latency=config.latency_ms / 1000.0)
        roll = self._rng.random()
        for status, rate in ((500, config.rate_500), (503, config.rate_503), (504, config.rate_504)):
            if roll < rate:
                fault.status = status
                self.injected[str(status)] += 1
                return fault
            roll -= rate
        if allow_drop and roll < config.drop_rate:
            fault.drop = True
            self.injected["drop"] += 1
        return fault

    def after_write(self) -> int | None:
        """503 or 504 for a write the tenant has already applied, or None."""
        if not self._config.rate_5xx_after_write or self._rng.random() >= self._config.rate_5xx_after_write:
            return None
        self.injected["after_write"] += 1
        return 503 if self._rng.random() < 0.5 else 504

    def throttled_anyway(self) -> bool:
        """A 429 although no limit is reached (a loaded service), the request not applied."""
        if not self._config.rate_429 or self._rng.random() >= self._config.rate_429:
            return False
        self.injected["429"] += 1
        return True

    def precondition_failed(self) -> bool:
        """A sporadic 412 on an update, before it is applied."""
        if not self._config.rate_412 or self._rng.random() >= self._config.rate_412:
            return False
        self.injected["412"] += 1
        return True
