"""The storage stand-in's restart (used by the soak) loses nothing it acknowledged, as Azure Storage never
does: Azurite keeps writes in memory between 5-s saves, so a stop that does not wait for its save drops them."""

import pytest
from azure.data.tables import TableServiceClient
from azure.storage.queue import QueueServiceClient

from registrar.localhost.azurite import Azurite

pytestmark = pytest.mark.integration


def test_a_restart_keeps_a_message_and_an_entity_written_just_before(tmp_path):
    with Azurite(tmp_path / "azurite") as storage:
        queue = QueueServiceClient.from_connection_string(storage.connection_string).get_queue_client("restart-check")
        queue.create_queue()
        table = TableServiceClient.from_connection_string(storage.connection_string).create_table("restartcheck")
        queue.send_message("acknowledged")
        table.create_entity({"PartitionKey": "p", "RowKey": "r", "state": "Pending"})
        storage.restart()  # at once: a client still holds its connection, as a running host's does
        queue = QueueServiceClient.from_connection_string(storage.connection_string).get_queue_client("restart-check")
        assert [m.content for m in queue.peek_messages(max_messages=5)] == ["acknowledged"]
        table = TableServiceClient.from_connection_string(storage.connection_string).get_table_client("restartcheck")
        assert table.get_entity("p", "r")["state"] == "Pending"
