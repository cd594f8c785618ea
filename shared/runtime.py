"""The composition root: real clients built once per process from settings, shared by all triggers."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from azure.storage.blob import BlobServiceClient, ContentSettings

from .config import Settings, load_settings
from .graph.autopilot import AutopilotClient
from .graph.client import graph_client
from .graph.directory import DirectoryClient
from .ingest import IngestContext
from .queue import MessageSender, ServiceBusSender
from .state import StateStore
from .storage import blob_service, table_service


@dataclass(slots=True)
class Runtime:
    settings: Settings
    store: StateStore
    sender: MessageSender
    blobs: BlobServiceClient
    graph: AutopilotClient
    directory: DirectoryClient

    def write_report(self, container: str, path: str, data: bytes, content_type: str) -> None:
        self.blobs.get_blob_client(container, path).upload_blob(
            data, overwrite=True, content_settings=ContentSettings(content_type=content_type)
        )

    @property
    def ingest(self) -> IngestContext:
        return IngestContext(self.settings, self.store, self.sender, self.write_report)

    @classmethod
    def build(cls, settings: Settings, sender: MessageSender | None = None) -> Runtime:
        if settings.graph_credential == "development":
            from .graph.credentials import AsyncDevelopmentCredential

            credential = AsyncDevelopmentCredential()
        else:
            from azure.identity.aio import DefaultAzureCredential

            credential = DefaultAzureCredential()
        client = graph_client(credential, settings.graph_base_url)
        return cls(
            settings=settings,
            store=StateStore(table_service(settings), settings.table_prefix),
            sender=sender or ServiceBusSender(settings),
            blobs=blob_service(settings),
            graph=AutopilotClient(client),
            directory=DirectoryClient(client),
        )


@functools.cache
def runtime() -> Runtime:
    """The Azure Functions process's runtime, from app settings (validated on first use)."""
    return Runtime.build(load_settings())
