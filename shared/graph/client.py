"""Building a ``GraphServiceClient`` for Azure or for the local emulator, with the SDK unchanged."""

from __future__ import annotations

from urllib.parse import urlsplit

from azure.core.credentials import TokenCredential
from azure.core.credentials_async import AsyncTokenCredential
from kiota_authentication_azure.azure_identity_authentication_provider import AzureIdentityAuthenticationProvider
from kiota_http.kiota_client_factory import KiotaClientFactory
from kiota_http.middleware.middleware import BaseMiddleware
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph_core import GraphClientFactory

GRAPH_URL = "https://graph.microsoft.com/v1.0"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"


def graph_client(
    credential: TokenCredential | AsyncTokenCredential,
    base_url: str = GRAPH_URL,
    extra_middleware: list[BaseMiddleware] | None = None,
) -> GraphServiceClient:
    """``base_url`` is Graph's v1.0 root, or the emulator's (``http://127.0.0.1:PORT/v1.0``).

    The SDK only attaches tokens for hosts it knows; the emulator's host is added explicitly, and the SDK
    accepts plain http only on loopback. ``extra_middleware`` runs after the SDK's own (retry, redirect,
    telemetry), next to the network: the shared write budget goes there.
    """
    host = urlsplit(base_url).hostname or "graph.microsoft.com"
    allowed = ["graph.microsoft.com", "graph.microsoft.us", "dod-graph.microsoft.us", "microsoftgraph.chinacloudapi.cn"]
    if host not in allowed:
        allowed.append(host)
    auth = AzureIdentityAuthenticationProvider(credential, scopes=[GRAPH_SCOPE], allowed_hosts=allowed)
    http = None
    if extra_middleware:
        pipeline = KiotaClientFactory.get_default_middleware(None) + [GraphClientFactory._get_telemetry_handler(None)]
        http = GraphClientFactory.create_with_custom_middleware(pipeline + extra_middleware)
    adapter = GraphRequestAdapter(auth, http)
    adapter.base_url = base_url.rstrip("/")
    return GraphServiceClient(request_adapter=adapter)
