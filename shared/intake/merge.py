"""Merging many uploads into one set of devices, with every input row accounted for exactly once.

Only a compact entry per serial is kept (the hash's digest, not the hash), so merging 100,000 rows takes
a few MB rather than the 400 MB of their hashes.
"""

from __future__ import annotations

from dataclasses import dataclass

from .model import DeviceRow, Rejection, RowRef, serial_key


@dataclass(frozen=True, slots=True)
class Duplicate:
    """A repeat of an accepted device: same serial, same hash. Kept once, reported here."""

    ref: RowRef
    kept: RowRef

    def as_dict(self) -> dict[str, object]:
        return {
            "file": self.ref.file,
            "line": self.ref.line,
            "serial": self.ref.serial,
            "duplicate_of": {"file": self.kept.file, "line": self.kept.line},
        }


@dataclass(slots=True)
class _Entry:
    identity: object
    first: RowRef
    repeats: list[RowRef] | None = None  # lists only where needed: most serials appear once
    conflicting: list[RowRef] | None = None


@dataclass(slots=True)
class MergeResult:
    accepted: list[RowRef]
    duplicates: list[Duplicate]
    rejected: list[Rejection]

    @property
    def total(self) -> int:
        return len(self.accepted) + len(self.duplicates) + len(self.rejected)


class Merger:
    """Feed it every row outcome in order; :meth:`result` classifies each exactly once."""

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}  # insertion order is input order
        self._rejected: list[Rejection] = []

    def add(self, outcome: DeviceRow | Rejection) -> None:
        # Every row of every upload passes here: a type test, and fields rather than properties.
        if type(outcome) is Rejection:
            self._rejected.append(outcome)
            return
        key = serial_key(outcome.serial)
        entry = self._entries.get(key)
        if entry is None:
            self._entries[key] = _Entry(outcome.identity, RowRef(outcome.file, outcome.line, outcome.serial))
        elif entry.identity == outcome.identity:
            entry.repeats = [*(entry.repeats or ()), outcome.ref]
        else:
            entry.conflicting = [*(entry.conflicting or ()), outcome.ref]

    def result(self) -> MergeResult:
        accepted: list[RowRef] = []
        duplicates: list[Duplicate] = []
        rejected = list(self._rejected)
        for entry in self._entries.values():
            repeats = entry.repeats or []
            if not entry.conflicting:
                accepted.append(entry.first)
                duplicates.extend(Duplicate(ref, entry.first) for ref in repeats)
                continue
            involved = sorted([entry.first, *repeats, *entry.conflicting], key=lambda r: (r.file, r.line))
            places = "; ".join(f"{r.file} line {r.line}" for r in involved)
            for ref in involved:
                rejected.append(
                    Rejection(
                        file=ref.file,
                        line=ref.line,
                        serial=ref.serial,
                        code="serial.conflict",
                        field="Hardware Hash",
                        reason=f"serial {ref.serial!r} appears with different hardware hashes ({places}): "
                        "none is registered until the right one is kept",
                    )
                )
        return MergeResult(accepted, duplicates, rejected)
