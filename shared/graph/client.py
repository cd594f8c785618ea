"""Building a ``GraphServiceClient`` for Azure or for the local emulator, with the SDK unchanged."""

from __future__ import annotations

from urllib.parse import urlsplit

from azure.core.credentials import TokenCredential
from azure.core.credentials_async import AsyncTokenCredential
from kiota_authentication_azure.azure_identity_authentication_provider import AzureIdentityAuthenticationProvider
from msgraph import GraphRequestAdapter, GraphServiceClient

GRAPH_URL = "https://graph.microsoft.com/v1.0"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"


def graph_client(credential: TokenCredential | AsyncTokenCredential, base_url: str = GRAPH_URL) -> GraphServiceClient:
    """``base_url`` is Graph's v1.0 root, or the emulator's (``http://127.0.0.1:PORT/v1.0``).

    The SDK only attaches tokens for hosts it knows; the emulator's host is added explicitly, and the SDK
    accepts plain http only on loopback.
    """
    host = urlsplit(base_url).hostname or "graph.microsoft.com"
    allowed = ["graph.microsoft.com", "graph.microsoft.us", "dod-graph.microsoft.us", "microsoftgraph.chinacloudapi.cn"]
    if host not in allowed:
        allowed.append(host)
    auth = AzureIdentityAuthenticationProvider(credential, scopes=[GRAPH_SCOPE], allowed_hosts=allowed)
    adapter = GraphRequestAdapter(auth)
    adapter.base_url = base_url.rstrip("/")
    return GraphServiceClient(request_adapter=adapter)
