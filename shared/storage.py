"""Storage clients from settings: a connection string locally (Azurite), the managed identity in Azure.

In Azure the clients are built from the same settings the Functions host and the blob SDK-type binding
read (``AzureWebJobsStorage__{blob,queue,table}ServiceUri``, ``__credential``, ``__clientId``), so the app
and its triggers always talk to the same account with the same identity.
"""

from __future__ import annotations

from azure.data.tables import TableServiceClient
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueServiceClient

from .config import Settings, StorageEndpoints


def credential(endpoints: StorageEndpoints):
    """DefaultAzureCredential for the configured user-assigned identity (``__clientId``), if any."""
    from azure.identity import DefaultAzureCredential

    if endpoints.client_id:
        return DefaultAzureCredential(managed_identity_client_id=endpoints.client_id)
    return DefaultAzureCredential()


def _endpoints(settings: Settings) -> StorageEndpoints:
    if settings.storage_endpoints is None:
        raise ValueError("no storage connection string and no storage service URIs")
    return settings.storage_endpoints


def blob_service(settings: Settings) -> BlobServiceClient:
    if settings.storage_connection:
        return BlobServiceClient.from_connection_string(settings.storage_connection)
    endpoints = _endpoints(settings)
    return BlobServiceClient(endpoints.blob, credential=credential(endpoints))


def table_service(settings: Settings) -> TableServiceClient:
    if settings.storage_connection:
        return TableServiceClient.from_connection_string(settings.storage_connection)
    endpoints = _endpoints(settings)
    return TableServiceClient(endpoints.table, credential=credential(endpoints))


def queue_service(settings: Settings) -> QueueServiceClient:
    if settings.storage_connection:
        return QueueServiceClient.from_connection_string(settings.storage_connection)
    endpoints = _endpoints(settings)
    return QueueServiceClient(endpoints.queue, credential=credential(endpoints))
