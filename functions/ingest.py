"""Blob trigger: a CSV landed in an upload container.

The trigger hands us a ``BlobClient`` (SDK-type binding, azurefunctions-extensions-bindings-blob): the host
has read nothing. Size and ETag come from the blob's properties before any byte is read; an oversize
upload is refused unread; the two intake passes each stream the blob in ranged reads of ``CHUNK_BYTES``,
pinned to that ETag, so memory does not grow with the file.
"""

from __future__ import annotations

import io

from azure.core import MatchConditions
from azure.storage.blob import BlobClient

from shared.ingest import ingest_upload
from shared.routing import is_report
from shared.runtime import Runtime, runtime
from shared.state import UploadRecord

CHUNK_BYTES = 4 * 1024 * 1024  # one ranged GET per chunk; the most a pass holds of the file at once


class BlobRangeReader(io.RawIOBase):
    """A read-only, forward-only stream over one version (ETag) of a blob, in ranged downloads.

    Each ``readinto`` fetches at most ``chunk`` bytes (one GET with ``Range`` and ``If-Match``). A blob
    replaced meanwhile raises ``ResourceModifiedError`` instead of mixing two versions.
    """

    def __init__(self, client: BlobClient, size: int, etag: str, chunk: int = CHUNK_BYTES) -> None:
        super().__init__()
        self._client, self._size, self._etag, self._chunk = client, size, etag, chunk
        self._offset = 0
        self.requests = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        want = min(len(view), self._chunk, self._size - self._offset)
        if want <= 0:
            return 0
        downloader = self._client.download_blob(
            offset=self._offset,
            length=want,
            etag=self._etag,
            match_condition=MatchConditions.IfNotModified,
            max_concurrency=1,
        )
        data = downloader.readall()  # at most one chunk
        got = len(data)
        view[:got] = data
        self.requests += 1
        self._offset += got
        return got


def open_blob(client: BlobClient, size: int, etag: str, chunk: int = CHUNK_BYTES) -> io.BufferedReader:
    return io.BufferedReader(BlobRangeReader(client, size, etag, chunk), buffer_size=chunk)


def main(client: BlobClient, rt: Runtime | None = None) -> UploadRecord | None:
    rt = rt or runtime()
    container, name = client.container_name, client.blob_name
    if is_report(name):
        return None  # our own report files
    properties = client.get_blob_properties()  # size and ETag: no byte of the content is read
    size, etag = int(properties.size), properties.etag
    if size > rt.settings.max_upload_bytes:
        return ingest_upload(container, name, etag, io.BytesIO, rt.ingest, size=size)  # rejected unread
    # A blob overwritten while it is read fails the ranged GET (If-Match) with ResourceModifiedError: the
    # run fails and its retry (or the new version's own BlobCreated event) ingests the version now stored.
    return ingest_upload(container, name, etag, lambda: open_blob(client, size, etag), rt.ingest, size=size)
