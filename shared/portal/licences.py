"""The admins' hand-off check: a profile may name licence SKUs its users need (``requiredLicenses`` in the
profiles document, SKU part numbers such as ``SPE_E3``); a Ready-for-user device whose assigned user lacks
one shows "Ready for user, but <user> lacks <licence>".

Licences come from Graph ``GET /users/{id | userPrincipalName}/licenseDetails`` (least privilege:
application permission User.Read.All), cached a few minutes per user so a page of 100 devices costs at most
one call per distinct user. A user Graph cannot find, or a failed call, shows nothing: the check only ever
adds a warning, it never hides a device's state.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from ..config import ProfilesDocument

Lookup = Callable[[str], "set[str] | None"]  # user -> SKU part numbers, None when unknown


class LicenceChecker:
    def __init__(self, profiles: ProfilesDocument, lookup: Lookup, ttl: float = 300.0) -> None:
        self._profiles = profiles
        self._lookup = lookup
        self._ttl = ttl
        self._cache: dict[str, tuple[float, set[str] | None]] = {}
        self._lock = threading.Lock()

    def required(self, profile: str) -> list[str]:
        found = self._profiles.profiles.get(profile)
        return list(getattr(found, "required_licenses", None) or [])

    def skus(self, user: str) -> set[str] | None:
        key = user.casefold()
        with self._lock:
            cached = self._cache.get(key)
            if cached and time.monotonic() - cached[0] < self._ttl:
                return cached[1]
        try:
            value = self._lookup(user)
        except Exception:  # noqa: BLE001 - a warning we cannot compute is not shown
            value = None
        with self._lock:
            self._cache[key] = (time.monotonic(), value)
        return value

    def missing(self, user: str, required: list[str]) -> list[str]:
        held = self.skus(user)
        if held is None:
            return []
        held_folded = {s.casefold() for s in held}
        return [sku for sku in required if sku.casefold() not in held_folded]
