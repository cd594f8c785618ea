"""Who is calling the portal, from App Service Authentication's ``X-MS-CLIENT-PRINCIPAL`` header.

In Azure, App Service Authentication (Easy Auth, Entra ID) sits in front of the app: it signs people in,
refuses anyone outside the allowed groups, strips any ``X-MS-CLIENT-PRINCIPAL`` a client sends and sets
its own (base64 JSON: ``auth_typ``, ``claims`` [{typ, val}], ``name_typ``, ``role_typ``). The header is
trusted only when the platform says authentication is on (``WEBSITE_AUTH_ENABLED=True``, which App
Service sets itself) or when the local host's development sign-in made it (the local front strips what
the browser sends). Without either, the portal answers 401 to everyone.

Access comes from the app roles in the token (``roles`` claim): ``Registrar.Admin`` sees everything;
``Registrar.Partner.<id>`` sees only partner ``<id>``'s devices and uploads. Assign the admin role to the
admin group in Entra (app roles can be assigned to groups) and each partner role to that partner's group.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass

ADMIN_ROLE = "Registrar.Admin"
PARTNER_ROLE_PREFIX = "Registrar.Partner."
HEADER = "x-ms-client-principal"
_ROLE_TYPES = ("roles", "http://schemas.microsoft.com/ws/2008/06/identity/claims/role")
_NAME_TYPES = ("name", "preferred_username", "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name")


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    partner: str | None  # None: an administrator (sees everything)

    @property
    def is_admin(self) -> bool:
        return self.partner is None

    @property
    def sender(self) -> str:
        return "admin" if self.is_admin else f"partner {self.partner}"


class Denied(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def easy_auth_enabled(env: Mapping[str, str] | None = None) -> bool:
    return (env if env is not None else os.environ).get("WEBSITE_AUTH_ENABLED", "").casefold() == "true"


def decode_principal(value: str) -> dict:
    try:
        data = json.loads(base64.b64decode(value + "=" * (-len(value) % 4)))
    except (ValueError, binascii.Error):
        raise Denied(401, "the sign-in header cannot be read: sign in again") from None
    if not isinstance(data, dict):
        raise Denied(401, "the sign-in header cannot be read: sign in again")
    return data


def encode_principal(name: str, roles: list[str]) -> str:
    """A header as Easy Auth writes it (the local development sign-in uses this)."""
    claims = [{"typ": "name", "val": name}] + [{"typ": "roles", "val": r} for r in roles]
    document = {"auth_typ": "aad", "claims": claims, "name_typ": "name", "role_typ": "roles"}
    return base64.b64encode(json.dumps(document).encode()).decode()


def principal(headers: Mapping[str, str], partners: set[str], *, trusted: bool) -> Principal:
    """The caller, or :class:`Denied` (401 not signed in, 403 signed in without a portal role)."""
    value = next((v for k, v in headers.items() if k.lower() == HEADER), "")
    if not trusted:
        raise Denied(401, "the portal needs App Service Authentication in front of it (see infra/README.md)")
    if not value:
        raise Denied(401, "sign in first")
    data = decode_principal(value)
    claims = [c for c in data.get("claims") or [] if isinstance(c, dict)]
    role_types = {*_ROLE_TYPES, str(data.get("role_typ") or "roles")}
    name_types = {*_NAME_TYPES, str(data.get("name_typ") or "name")}
    roles = {str(c.get("val")) for c in claims if c.get("typ") in role_types}
    name = next((str(c.get("val")) for c in claims if c.get("typ") in name_types), "") or "signed-in user"
    if ADMIN_ROLE in roles:
        return Principal(name, None)
    mine = sorted(r.removeprefix(PARTNER_ROLE_PREFIX) for r in roles if r.startswith(PARTNER_ROLE_PREFIX))
    mine = [p for p in mine if p in partners]
    if len(mine) == 1:
        return Principal(name, mine[0])
    if len(mine) > 1:
        raise Denied(403, f"{name} holds roles of several partners ({', '.join(mine)}): one account, one partner")
    raise Denied(403, f"{name} has no portal role: ask for {ADMIN_ROLE} or {PARTNER_ROLE_PREFIX}<partner>")
