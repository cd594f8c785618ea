"""The composition root: real clients built once per process from settings, shared by all triggers."""

from __future__ import annotations

import base64
import functools
from dataclasses import dataclass
from typing import BinaryIO

from azure.data.tables import TableServiceClient
from azure.storage.blob import BlobBlock, BlobServiceClient, ContentSettings

from .budget import WriteBudget, parse_budgets
from .config import Settings, load_settings
from .graph.autopilot import AutopilotClient
from .graph.budget_middleware import WriteBudgetHandler
from .graph.client import graph_client
from .graph.directory import DirectoryClient
from .ingest import IngestContext
from .licences import LicenceReader
from .queue import MessageSender, ServiceBusSender
from .state import StateStore
from .storage import blob_service, table_service

REPORT_BLOCK_BYTES = 4 * 1024 * 1024


@dataclass(slots=True)
class Runtime:
    settings: Settings
    store: StateStore
    sender: MessageSender
    blobs: BlobServiceClient
    graph: AutopilotClient
    directory: DirectoryClient
    licences: LicenceReader

    def write_report(self, container: str, path: str, data: bytes | BinaryIO, content_type: str) -> None:
        """Small reports in one put; a report streamed from a file in 4 MiB blocks, so a 100,000-row
        report is never read into memory whole (the SDK reads up to 64 MiB for a single put)."""
        client = self.blobs.get_blob_client(container, path)
        settings = ContentSettings(content_type=content_type)
        if isinstance(data, bytes | bytearray):
            client.upload_blob(data, overwrite=True, content_settings=settings)
            return
        blocks = []
        while chunk := data.read(REPORT_BLOCK_BYTES):
            block_id = base64.b64encode(f"{len(blocks):08d}".encode()).decode()
            client.stage_block(block_id, chunk)
            blocks.append(BlobBlock(block_id))
        client.commit_block_list(blocks, content_settings=settings)

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
        tables = table_service(settings)
        budgets = shared_write_budgets(tables, settings)
        client = graph_client(credential, settings.graph_base_url, [WriteBudgetHandler(budgets)])
        return cls(
            settings=settings,
            store=StateStore(tables, settings.table_prefix),
            sender=sender or ServiceBusSender(settings),
            blobs=blob_service(settings),
            # A $batch never carries more writes than a whole budget window allows (Graph would throttle
            # the rest of its items): with the default budgets that is Graph's own 20.
            graph=AutopilotClient(client, max_batch_writes=_batch_writes(budgets, "intune")),
            directory=DirectoryClient(client, max_batch_writes=_batch_writes(budgets, "entra")),
            licences=LicenceReader(client),
        )


def _batch_writes(budgets: dict[str, WriteBudget], family: str) -> int:
    budget = budgets.get(family)
    return max(1, min(20, budget.limit.limit)) if budget else 20


def shared_write_budgets(tables: TableServiceClient, settings: Settings) -> dict[str, WriteBudget]:
    """The Graph write budgets every instance takes from (one table, one entity per budget)."""
    limits = parse_budgets(settings.graph_write_budget)
    if not limits:
        return {}
    table = tables.create_table_if_not_exists(f"{settings.table_prefix}budget")
    return {name: WriteBudget(table, limit) for name, limit in limits.items()}


@functools.cache
def runtime() -> Runtime:
    """The Azure Functions process's runtime, from app settings (validated on first use)."""
    return Runtime.build(load_settings())
