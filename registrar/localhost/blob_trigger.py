"""The Event Grid blob trigger as the Functions blob extension runs it, on Azurite.

On Azure (Microsoft.Azure.WebJobs.Extensions.Storage.Blobs; sources in docs/blob-trigger.md):

1. Event Grid posts ``BlobCreated`` to ``/runtime/webhooks/blobs?functionName=Host.Functions.<name>``; the
   extension writes one ``BlobTriggerMessage`` (FunctionId, BlobType, ContainerName, BlobName, ETag) per
   event to the host's queue in ``AzureWebJobsStorage`` and answers 202 (``BlobsExtensionConfigProvider``).
   Only events that pass the subscription's filter are posted (``subscription_filter``, as in
   ``infra/modules/eventgrid.bicep``).
2. A queue listener runs each message (``BlobQueueTriggerExecutor``): a FunctionId the host does not know is
   **dropped** (``FunctionNotFound``, the message is deleted as a success); a blob that no longer exists is
   dropped (``BlobNotFound``); otherwise the function runs with the blob.
3. A failed run leaves the message on the queue and it is tried again; after ``MaxDequeueCount`` (5) tries
   the message is copied to ``webjobs-blobtrigger-poison`` and deleted (``QueueProcessor``). The poison
   queue is in the **triggering blob's** account (the ``connection=`` of the trigger, our data account),
   the host queue in ``AzureWebJobsStorage`` (``SharedBlobQueueListenerFactory``).
4. A second subscription per upload container (same filter) journals every event into a storage queue of
   the data account (``upload-events``), independent of the app; the reconcile sweep drains it
   (shared/sweep.py). ``UploadEvents`` writes the same Event Grid schema event there.

Here ``EventGridBlobTrigger.publish`` is step 1 (``UploadEvents`` stands in for the Event Grid subscription
by listing the upload containers and publishing each new blob version once) and ``run_once`` is steps 2-3,
on a real Azurite queue. Functions get a real ``azure.storage.blob.BlobClient``, as the SDK-type binding
(azurefunctions-extensions-bindings-blob) gives them.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import unquote, urlsplit

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import BlobClient, BlobServiceClient
from azure.storage.queue import QueueClient, QueueServiceClient, TextBase64DecodePolicy, TextBase64EncodePolicy

from shared.config import REPORTS_PREFIX

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


def subscription_filter(container: str, blob_name: str) -> bool:
    """The Event Grid subscriptions' filter (infra/modules/eventgrid.bicep): subjectBeginsWith the
    container's ``/blobs/`` and an advanced filter StringNotBeginsWith on ``subject`` for
    ``<container>/blobs/_reports/`` (the reports the app writes itself). Advanced string filters are
    case-insensitive: a ``_Reports/`` upload is not delivered either. There is deliberately no
    ``subjectEndsWith '.csv'``: a partner's ``devices.txt`` must get a report saying why it was refused,
    not silence."""
    return not blob_name.lower().startswith(REPORTS_PREFIX.lower())


def blob_event_url(account: str, container: str, blob_name: str) -> str:
    """``data.url`` of a BlobCreated event: the name as stored, not escaped (a ``#`` in it stays a raw ``#``:
    Azure/azure-sdk-for-net#23634)."""
    return f"https://{account}.blob.core.windows.net/{container}/{blob_name}"


def blob_from_event_url(url: str) -> tuple[str, str]:
    """Container and blob name as the blob extension reads them from ``data.url``: through ``new Uri(url)``
    and ``BlobUriBuilder`` (BlobsExtensionConfigProvider), so a ``#`` or ``?`` in the name ends it there
    (azure-sdk-for-net#23634, #40925): the message then names a blob that does not exist, and is dropped.
    The product still ingests such an upload: the reconcile sweep reads the event's ``subject``."""
    parts = urlsplit(url)
    container, _, name = parts.path.lstrip("/").partition("/")
    return unquote(container), unquote(name)


def blob_created_event(container: str, blob_name: str, etag: str, size: int, account: str) -> dict:
    """One ``Microsoft.Storage.BlobCreated`` event in the Event Grid schema, as a storage-queue destination
    receives it (the event object as the message text) and as a dead-letter blob holds it."""
    return {
        "id": str(uuid.uuid4()),
        "topic": f"/subscriptions/local/resourceGroups/local/providers/Microsoft.Storage/storageAccounts/{account}",
        "subject": f"/blobServices/default/containers/{container}/blobs/{blob_name}",
        "eventType": "Microsoft.Storage.BlobCreated",
        "eventTime": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "data": {
            "api": "PutBlob",
            "eTag": etag.strip('"'),
            "contentType": "text/csv",
            "contentLength": size,
            "blobType": "BlockBlob",
            "url": blob_event_url(account, container, blob_name),
        },
        "dataVersion": "",
        "metadataVersion": "1",
    }


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
        poison_queues: QueueServiceClient | None = None,
    ) -> None:
        """``queues``: the host's account (AzureWebJobsStorage), for the host queue. ``poison_queues``: the
        triggering blobs' account (the trigger's connection), for the poison queue; default ``queues``."""
        self.blobs = blobs
        self.functions = {function_id(name): fn for name, fn in functions.items()}
        self.max_dequeue_count = max_dequeue_count
        # The extension's queue clients encode messages in Base64 (QueueServiceClientProvider:
        # "options.MessageEncoding = QueueMessageEncoding.Base64"), the poison copy included.
        encoded = {"message_encode_policy": TextBase64EncodePolicy(), "message_decode_policy": TextBase64DecodePolicy()}
        self.queue = queues.get_queue_client(queue_name, **encoded)
        self.poison = (poison_queues or queues).get_queue_client(POISON_QUEUE, **encoded)
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
    """Stands in for Event Grid and the subscriptions of infra/modules/eventgrid.bicep: one BlobCreated event
    per new blob version in each upload container that passes the filter (``subscription_filter``), posted
    to that container's function (the webhook subscription) and, when ``journal`` is given, written to the
    journal queue (the storage-queue subscription). ``deliver_webhook`` False stands for a webhook delivery
    that never reaches the function (host down, dead-lettered): the journal still gets the event."""

    def __init__(self, blobs: BlobServiceClient, containers: list[str], journal: QueueClient | None = None) -> None:
        self.blobs = blobs
        self.containers = containers
        self.journal = journal
        self.deliver_webhook = True
        self._seen: set[tuple[str, str, str]] = set()
        if journal is not None:
            try:
                journal.create_queue()
            except ResourceExistsError:
                pass

    def publish_new(self, trigger: EventGridBlobTrigger) -> int:
        published = 0
        for container in self.containers:
            for blob in self.blobs.get_container_client(container).list_blobs():
                key = (container, blob.name, blob.etag)
                if key in self._seen or not subscription_filter(container, blob.name):
                    continue
                if self.journal is not None:
                    event = blob_created_event(container, blob.name, blob.etag, blob.size, self.blobs.account_name)
                    self.journal.send_message(json.dumps(event))
                if self.deliver_webhook:
                    named, name = blob_from_event_url(blob_event_url(self.blobs.account_name, container, blob.name))
                    trigger.publish(ingest_function_name(container), named, name, blob.etag)
                # Only once delivered: a send that failed is tried again next time (Event Grid retries; a
                # repeat of the journal event is a duplicate, which Event Grid's at-least-once allows).
                self._seen.add(key)
                published += 1
        return published
