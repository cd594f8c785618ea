"""Storage clients from settings: a connection string locally (Azurite), the managed identity in Azure.

The app's own clients always talk to the DATA account (uploads, reports, state tables, the upload-event
journal): the ``DataStorage`` connection, ``DataStorage__{blob,queue,table}ServiceUri`` with
``__credential`` and ``__clientId`` in Azure, the same settings the blob trigger's ``connection=``
names, so the app and its trigger use one account with one identity. The Functions host's own account
(``AzureWebJobsStorage``: keys, deployment package, host queues) is never used by app code; only the local
host, which plays the Functions host, opens it (``host_queue_service``).
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
        raise ValueError("no data storage connection string and no data storage service URIs")
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


def host_queue_service(settings: Settings) -> QueueServiceClient:
    """The Functions host's own account (``AzureWebJobsStorage``), for the local host's blob-trigger queue.
    Locally it is a connection string; without one (one Azurite for both) the data account stands in."""
    if settings.host_storage_connection:
        return QueueServiceClient.from_connection_string(settings.host_storage_connection)
    return queue_service(settings)
