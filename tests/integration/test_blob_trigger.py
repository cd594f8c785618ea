"""The local Event Grid blob trigger behaves like the Functions blob extension (docs/blob-trigger.md), on
real Azurite queues: one test per behaviour."""

from __future__ import annotations

import base64
import json
import uuid

import pytest
from azure.storage.blob import BlobClient, BlobServiceClient
from azure.storage.queue import QueueServiceClient

from registrar.localhost.blob_trigger import (
    MAX_DEQUEUE_COUNT,
    POISON_QUEUE,
    EventGridBlobTrigger,
    UploadEvents,
    function_id,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def storage(azurite):
    blobs = BlobServiceClient.from_connection_string(azurite.connection_string)
    queues = QueueServiceClient.from_connection_string(azurite.connection_string)
    container = f"c{uuid.uuid4().hex[:12]}"
    blobs.create_container(container)
    yield blobs, queues, container
    blobs.delete_container(container)


def make_trigger(storage, functions):
    blobs, queues, _ = storage
    return EventGridBlobTrigger(queues, blobs, functions, queue_name=f"azure-webjobs-blobtrigger-{uuid.uuid4().hex[:8]}")


def put(storage, name: str = "standard/a.csv") -> tuple[str, str]:
    blobs, _, container = storage
    etag = blobs.get_blob_client(container, name).upload_blob(b"serial\nX1\n", overwrite=True)["etag"]
    return name, etag


def poisoned(storage, blob_name: str) -> list[dict]:
    _, queues, _ = storage
    poison = queues.get_queue_client(POISON_QUEUE)  # read raw: the extension writes Base64
    bodies = [base64.b64decode(m.content).decode() for m in poison.peek_messages(max_messages=32)]
    return [json.loads(body) for body in bodies if blob_name in body]


def test_the_function_gets_a_blob_client_for_the_blob_and_the_message_is_completed(storage):
    calls: list[BlobClient] = []
    trigger = make_trigger(storage, {"ingest_x": calls.append})
    name, etag = put(storage)
    trigger.publish("ingest_x", storage[2], name, etag)
    run = trigger.run_once()
    assert run.succeeded == [f"{storage[2]}/{name}"]
    assert len(calls) == 1 and isinstance(calls[0], BlobClient)  # what the SDK-type binding hands over
    assert (calls[0].container_name, calls[0].blob_name) == (storage[2], name)
    assert calls[0].get_blob_properties().etag == etag
    assert trigger.queue.peek_messages() == []


def test_a_failing_function_gets_five_tries_then_the_message_goes_to_the_poison_queue(storage):
    tries = []

    def fail(client):
        tries.append(client.blob_name)
        raise RuntimeError("boom")

    trigger = make_trigger(storage, {"ingest_x": fail})
    name, etag = put(storage, f"standard/{uuid.uuid4().hex}.csv")
    trigger.publish("ingest_x", storage[2], name, etag)
    run = trigger.run_once()
    assert len(tries) == MAX_DEQUEUE_COUNT == 5
    assert len(run.failed) == 4 and run.poisoned == [f"{storage[2]}/{name}"]
    assert trigger.queue.peek_messages() == []
    [message] = poisoned(storage, name)
    assert message["FunctionId"] == function_id("ingest_x") == "Host.Functions.ingest_x"
    assert (message["ContainerName"], message["BlobName"], message["ETag"]) == (storage[2], name, etag)


def test_a_try_that_succeeds_after_a_failure_is_not_poisoned(storage):
    tries = []

    def flaky(client):
        tries.append(1)
        if len(tries) == 1:
            raise RuntimeError("transient")

    trigger = make_trigger(storage, {"ingest_x": flaky})
    name, etag = put(storage, f"standard/{uuid.uuid4().hex}.csv")
    trigger.publish("ingest_x", storage[2], name, etag)
    run = trigger.run_once()
    assert len(tries) == 2 and run.succeeded and not run.poisoned and poisoned(storage, name) == []


def test_an_event_for_a_function_the_host_does_not_know_is_dropped(storage):
    calls = []
    trigger = make_trigger(storage, {"ingest_x": calls.append})
    name, etag = put(storage, f"standard/{uuid.uuid4().hex}.csv")
    trigger.publish("ingest_partner_gone", storage[2], name, etag)  # e.g. a partner removed from the app
    run = trigger.run_once()
    assert calls == [] and run.function_not_found == [f"{storage[2]}/{name}"]
    assert trigger.queue.peek_messages() == [] and poisoned(storage, name) == []  # dropped, not retried


def test_an_event_for_a_blob_that_is_gone_is_dropped(storage):
    calls = []
    trigger = make_trigger(storage, {"ingest_x": calls.append})
    name, etag = put(storage, f"standard/{uuid.uuid4().hex}.csv")
    storage[0].get_blob_client(storage[2], name).delete_blob()
    trigger.publish("ingest_x", storage[2], name, etag)
    run = trigger.run_once()
    assert calls == [] and run.blob_not_found == [f"{storage[2]}/{name}"] and trigger.queue.peek_messages() == []


def test_each_new_blob_version_is_one_event_for_its_containers_function(storage):
    blobs, _, container = storage
    seen = []
    trigger = make_trigger(storage, {"ingest_" + container: lambda c: seen.append(c.get_blob_properties().etag)})
    events = UploadEvents(blobs, [container])
    _, first = put(storage)
    assert events.publish_new(trigger) == 1 and events.publish_new(trigger) == 0  # once per version
    _, second = put(storage)  # overwritten: a new BlobCreated event
    assert events.publish_new(trigger) == 1
    trigger.run_once()
    assert seen == [second, second]  # each run reads the blob as it is now (the extension does not pin the ETag)
    assert first != second


def test_a_name_with_a_hash_sign_reaches_the_function_cut_as_on_azure(storage):
    """The extension reads the blob's name from the event's data.url through a URI parser, so a '#' ends it
    (azure-sdk-for-net#23634, #40925): the message names a blob that does not exist and is dropped."""
    blobs, _, container = storage
    calls = []
    trigger = make_trigger(storage, {"ingest_" + container: calls.append})
    put(storage, "standard/batch#2.csv")
    assert UploadEvents(blobs, [container]).publish_new(trigger) == 1
    run = trigger.run_once()
    assert calls == [] and run.blob_not_found == [f"{container}/standard/batch"]
