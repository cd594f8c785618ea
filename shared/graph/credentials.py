"""Credentials for Graph. In Azure: the managed identity through ``DefaultAzureCredential``. Locally, against
the Graph emulator: :class:`DevelopmentCredential`, which hands out a fixed, non-secret bearer token."""

from __future__ import annotations

import time
from typing import Any

from azure.core.credentials import AccessToken


class DevelopmentCredential:
    """A token credential (sync and async) for the local Graph emulator only.

    The token names the calling app so the emulator can keep per-app throttle budgets. It grants nothing
    anywhere else: it is not a secret and never reaches Microsoft.
    """

    def __init__(self, app_name: str = "autopilot-registrar-dev") -> None:
        self._token = f"dev.{app_name}"

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(self._token, int(time.time()) + 3600)

    async def __aenter__(self) -> DevelopmentCredential:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def close(self) -> None:
        return None


class AsyncDevelopmentCredential(DevelopmentCredential):
    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:  # type: ignore[override]
        return AccessToken(self._token, int(time.time()) + 3600)
