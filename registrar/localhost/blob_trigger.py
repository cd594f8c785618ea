"""The Event Grid blob trigger as the Functions blob extension runs it, on Azurite.

On Azure (Microsoft.Azure.WebJobs.Extensions.Storage.Blobs; sources in docs/blob-trigger.md):

1. Event Grid posts ``BlobCreated`` to ``/runtime/webhooks/blobs?functionName=Host.Functions.<name>``; the
   extension writes one ``BlobTriggerMessage`` (FunctionId, BlobType, ContainerName, BlobName, ETag) per
   event to the host's queue in ``AzureWebJobsStorage`` and answers 202 (``BlobsExtensionConfigProvider``).
2. A queue listener runs each message (``BlobQueueTriggerExecutor``): a FunctionId the host does not know is
   **dropped** (``FunctionNotFound``, the message is deleted as a success); a blob that no longer exists is
   dropped (``BlobNotFound``); otherwise the function runs with the blob.
3. A failed run leaves the message on the queue and it is tried again; after ``MaxDequeueCount`` (5) tries
   the message is copied to ``webjobs-blobtrigger-poison`` and deleted (``QueueProcessor``).

Here ``EventGridBlobTrigger.publish`` is step 1 (``UploadEvents`` stands in for the Event Grid subscription
by listing the upload containers and publishing each new blob version once) and ``run_once`` is steps 2-3,
on a real Azurite queue. Functions get a real ``azure.storage.blob.BlobClient``, as the SDK-type binding
(azurefunctions-extensions-bindings-blob) gives them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import BlobClient, BlobServiceClient
from azure.storage.queue import QueueServiceClient

from shared.routing import is_report

log = logging.getLogger("registrar.localhost.blobs")

# The host's queue is azure-webjobs-blobtrigger-<hostId>; the poison queue name is fixed (HostQueueNames).
HOST_QUEUE = "azure-webjobs-blobtrigger-localhost"
POISON_QUEUE = "webjobs-blobtrigger-poison"
MAX_DEQUEUE_COUNT = 5  # QueuesOptions.MaxDequeueCount default, shared by blob triggers
# The listener keeps a message invisible while the function runs (it renews the visibility); a message whose
# run was cut off (host killed) comes back after this.
RUN_VISIBILITY_SECONDS = 600

BlobFunction = Callable[[BlobClient], object]


def function_id(name: str) -> str:
    """The FunctionId of a function named ``name``, as Event Grid's endpoint URL spells it."""
    return f"Host.Functions.{name}"


def ingest_function_name(container: str) -> str:
    """function_app.py's name for a container's blob trigger (and infra/modules/eventgrid.bicep's)."""
    return "ingest_" + container.replace("-", "_")


@dataclass(slots=True)
class TriggerRun:
    """What one ``run_once`` did with each message it took."""

    succeeded: list[str] = field(default_factory=list)  # blob paths whose function returned
    failed: list[str] = field(default_factory=list)  # the function raised; the message is tried again
    poisoned: list[str] = field(default_factory=list)  # the last allowed try failed: now in the poison queue
    function_not_found: list[str] = field(default_factory=list)  # dropped
    blob_not_found: list[str] = field(default_factory=list)  # dropped


class EventGridBlobTrigger:
    def __init__(
        self,
        queues: QueueServiceClient,
        blobs: BlobServiceClient,
        functions: Mapping[str, BlobFunction],
        *,
        queue_name: str = HOST_QUEUE,
        max_dequeue_count: int = MAX_DEQUEUE_COUNT,
    ) -> None:
        self.blobs = blobs
        self.functions = {function_id(name): fn for name, fn in functions.items()}
        self.max_dequeue_count = max_dequeue_count
        self.queue = queues.get_queue_client(queue_name)
        self.poison = queues.get_queue_client(POISON_QUEUE)
        for queue in (self.queue, self.poison):
            try:
                queue.create_queue()
            except ResourceExistsError:
                pass

    def publish(self, function_name: str, container: str, blob_name: str, etag: str) -> None:
        """The webhook: one BlobTriggerMessage per event, for the function named in the endpoint URL."""
        message = {
            "Type": "BlobTrigger",
            "FunctionId": function_id(function_name),
            "BlobType": "BlockBlob",
            "ContainerName": container,
            "BlobName": blob_name,
            "ETag": etag,
        }
        self.queue.send_message(json.dumps(message))

    def run_once(self, max_messages: int = 1000) -> TriggerRun:
        """Run every message that is visible now, including the immediate retries of failed runs (the
        extension's default visibility timeout after a failure is zero), until the queue is empty."""
        run = TriggerRun()
        for _ in range(max_messages):
            received = list(self.queue.receive_messages(max_messages=1, visibility_timeout=RUN_VISIBILITY_SECONDS))
            if not received:
                break
            self._execute(received[0], run)
        return run

    def _execute(self, message, run: TriggerRun) -> None:
        body = json.loads(message.content)
        path = f"{body['ContainerName']}/{body['BlobName']}"
        fn = self.functions.get(body["FunctionId"])
        if fn is None:
            log.warning("blob trigger message for an unknown function dropped (FunctionNotFound)",
                        extra={"function_id": body["FunctionId"], "blob": path})
            self.queue.delete_message(message)
            run.function_not_found.append(path)
            return
        client = self.blobs.get_blob_client(body["ContainerName"], body["BlobName"])
        try:
            client.get_blob_properties()
        except ResourceNotFoundError:
            self.queue.delete_message(message)  # BlobNotFound: the blob is gone, nothing to run
            run.blob_not_found.append(path)
            return
        try:
            fn(client)
        except Exception:  # noqa: BLE001 - any failure of the function is a failed try, as on Azure
            log.exception("blob trigger function failed", extra={"blob": path, "try": message.dequeue_count})
            if message.dequeue_count >= self.max_dequeue_count:
                self.poison.send_message(message.content)
                self.queue.delete_message(message)
                run.poisoned.append(path)
            else:
                self.queue.update_message(message, visibility_timeout=0)  # visible again at once
                run.failed.append(path)
            return
        self.queue.delete_message(message)
        run.succeeded.append(path)

    def poison_messages(self) -> list[dict]:
        return [json.loads(m.content) for m in self.poison.peek_messages(max_messages=32)]


class UploadEvents:
    """Stands in for the Event Grid subscriptions: one BlobCreated event per new blob version in each
    upload container, delivered to that container's function (infra/modules/eventgrid.bicep). The
    function's own report files are not published (the function ignores them anyway)."""

    def __init__(self, blobs: BlobServiceClient, containers: list[str]) -> None:
        self.blobs = blobs
        self.containers = containers
        self._seen: set[tuple[str, str, str]] = set()

    def publish_new(self, trigger: EventGridBlobTrigger) -> int:
        published = 0
        for container in self.containers:
            for blob in self.blobs.get_container_client(container).list_blobs():
                key = (container, blob.name, blob.etag)
                if is_report(blob.name) or key in self._seen:
                    continue
                trigger.publish(ingest_function_name(container), container, blob.name, blob.etag)
                self._seen.add(key)
                published += 1
        return published
