"""The licence lookup against Microsoft Graph: ``GET /users/{id | userPrincipalName}/licenseDetails``
(application permission User.Read.All), read synchronously with httpx (the portal's handlers are sync)."""

from __future__ import annotations

from urllib.parse import quote

import httpx

from ..config import Settings
from .licences import LicenceChecker

SCOPE = "https://graph.microsoft.com/.default"


def licence_checker(settings: Settings) -> LicenceChecker | None:
    """None when no profile names required licences: then nothing is ever looked up."""
    if not any(getattr(p, "required_licenses", None) for p in settings.profiles.profiles.values()):
        return None
    if settings.graph_credential == "development":
        from ..graph.credentials import DevelopmentCredential

        credential = DevelopmentCredential()
    else:
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential()
    client = httpx.Client(timeout=10.0)
    base = settings.graph_base_url.rstrip("/")

    def lookup(user: str) -> set[str] | None:
        token = credential.get_token(SCOPE).token
        url = f"{base}/users/{quote(user, safe='@.')}/licenseDetails"
        skus: set[str] = set()
        while url:
            response = client.get(url, headers={"Authorization": f"Bearer {token}"}, params={"$select": "skuPartNumber"})
            if response.status_code == 404:
                return None  # no such user in the directory: nothing to say
            response.raise_for_status()
            data = response.json()
            skus |= {str(item.get("skuPartNumber")) for item in data.get("value", []) if item.get("skuPartNumber")}
            url = data.get("@odata.nextLink")
        return skus

    return LicenceChecker(settings.profiles, lookup)
