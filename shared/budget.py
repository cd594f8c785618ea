"""One Graph write budget for every instance of the app, kept in Table Storage.

Flex Consumption runs register on many instances at once (and reconcile beside them); Intune's budget
(100 writes per 20 s per app and tenant) and Entra's (3,000 writes per 150 s per app and tenant) are
shared by all of them (autopilot-graph-facts.md, Throttling). Each instance therefore takes its writes
from one shared sliding-window log: at most ``limit`` writes in any ``window`` seconds, summed over every
instance. A window log is stricter than Graph's own buckets, so throttling stays the exception.

A grant is taken before the request leaves, and Graph counts the request when it arrives: a request held
up in between (a busy instance, a slow connection) would land in a later window than its grant. So a
grant stays in the log for the window plus a margin (a quarter of the window by default), which bounds
the time a request may spend between grant and arrival.

The log is one entity per budget, updated with its ETag: two instances granting at once cannot both win.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

BUDGET_PARTITION = "budget"
_SPEC = re.compile(r"\s*([a-z]+)\s*=\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)\s*")
DEFAULT_BUDGETS = "intune=100/20,entra=3000/150"
_SLOTS = 200


@dataclass(frozen=True, slots=True)
class BudgetLimit:
    name: str
    limit: int
    window: float


def parse_budgets(text: str) -> dict[str, BudgetLimit]:
    """``intune=100/20,entra=3000/150``: writes per window (seconds) per resource family."""
    limits: dict[str, BudgetLimit] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        match = _SPEC.fullmatch(part)
        if not match or int(match[2]) < 1 or float(match[3]) <= 0:
            raise ValueError(f"{part!r} is not NAME=WRITES/SECONDS (e.g. intune=100/20)")
        limits[match[1]] = BudgetLimit(match[1], int(match[2]), float(match[3]))
    return limits


class WriteBudget:
    """A sliding-window write budget shared through one table entity."""

    def __init__(
        self, table: TableClient, limit: BudgetLimit, clock: Callable[[], float] = time.time, margin: float | None = None
    ) -> None:
        self._table = table
        self.limit = limit
        self._clock = clock
        self.hold = limit.window + (limit.window / 4 if margin is None else margin)  # how long a grant counts
        # The entity as this instance last wrote or read it. Other instances can only have added grants since,
        # so a decision of "full" on it holds; a grant written on it fails on the ETag if anyone wrote in
        # between, and then the entity is read again. One storage call per grant instead of two.
        self._known: tuple[str, str] | None = None  # (grants, etag)

    def try_acquire(self, writes: int = 1, reserve: int = 0) -> float:
        """Take ``writes`` from the budget: 0.0 when granted, else the seconds until they would fit.
        ``reserve`` writes must stay free after the grant: background work (clean-up) leaves them to
        registration and repairs, which then never wait behind it."""
        reserve = min(reserve, self.limit.limit - 1)
        writes = min(writes, self.limit.limit - reserve)  # bigger than the budget: waits for an empty window
        for _ in range(20):
            known, self._known = self._known, None
            text, etag = known or self._read()
            now = self._clock()
            grants = [(t, n) for t, n in _parse(text) if t > now - self.hold]
            used = sum(n for _, n in grants)
            if used + writes + reserve > self.limit.limit:
                self._known = (text, etag)
                return _wait(grants, used, writes + reserve, self.limit.limit, self.hold, now)
            if grants and grants[-1][0] > now - self.hold / _SLOTS:
                # Merge into the last grant, stamped now: it then leaves the window later (never earlier),
                # and the log stays under ~_SLOTS entries whatever the limit (an entity property holds 32K chars).
                grants[-1] = (now, grants[-1][1] + writes)
            else:
                grants.append((now, writes))
            try:
                written = _format(grants)
                meta = self._table.update_entity(
                    {**_key(self.limit.name), "grants": written},
                    mode=UpdateMode.REPLACE,
                    etag=etag,
                    match_condition=MatchConditions.IfNotModified,
                )
                self._known = (written, meta["etag"])
                return 0.0
            except (ResourceModifiedError, ResourceNotFoundError):
                continue  # another instance granted meanwhile: read again
        return 0.5  # very busy: let the caller come back shortly

    def _read(self) -> tuple[str, str]:
        try:
            entity = self._table.get_entity(BUDGET_PARTITION, self.limit.name)
        except ResourceNotFoundError:
            try:
                self._table.create_entity({**_key(self.limit.name), "grants": ""})
            except ResourceExistsError:
                pass
            entity = self._table.get_entity(BUDGET_PARTITION, self.limit.name)
        return entity.get("grants", ""), entity.metadata["etag"]


def _key(name: str) -> dict[str, str]:
    return {"PartitionKey": BUDGET_PARTITION, "RowKey": name}


def _parse(text: str) -> list[tuple[float, int]]:
    grants = []
    for item in filter(None, text.split(";")):
        at, _, count = item.partition(":")
        grants.append((float(at), int(count)))
    return grants


def _format(grants: list[tuple[float, int]]) -> str:
    return ";".join(f"{t:.3f}:{n}" for t, n in grants)


def _wait(grants: list[tuple[float, int]], used: int, writes: int, limit: int, hold: float, now: float) -> float:
    """When the oldest grants leave the log far enough for ``writes`` more."""
    for at, count in sorted(grants):
        used -= count
        if used + writes <= limit:
            return max(0.001, at + hold - now)
    return hold
