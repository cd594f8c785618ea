"""Storage clients from settings: a connection string locally (Azurite), the managed identity in Azure."""

from __future__ import annotations

from azure.data.tables import TableServiceClient
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueServiceClient

from .config import Settings


def _credential():
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential()


def blob_service(settings: Settings) -> BlobServiceClient:
    if settings.storage_connection:
        return BlobServiceClient.from_connection_string(settings.storage_connection)
    return BlobServiceClient(f"https://{settings.storage_account}.blob.core.windows.net", credential=_credential())


def table_service(settings: Settings) -> TableServiceClient:
    if settings.storage_connection:
        return TableServiceClient.from_connection_string(settings.storage_connection)
    return TableServiceClient(f"https://{settings.storage_account}.table.core.windows.net", credential=_credential())


def queue_service(settings: Settings) -> QueueServiceClient:
    if settings.storage_connection:
        return QueueServiceClient.from_connection_string(settings.storage_connection)
    return QueueServiceClient(f"https://{settings.storage_account}.queue.core.windows.net", credential=_credential())
