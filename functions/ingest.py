"""Blob trigger: a CSV landed in an upload container."""

from __future__ import annotations

import hashlib
import io

import azure.functions as func

from shared.ingest import ingest_upload
from shared.routing import is_report
from shared.runtime import Runtime, runtime
from shared.state import UploadRecord


def main(blob: func.InputStream, rt: Runtime | None = None) -> UploadRecord | None:
    rt = rt or runtime()
    container, _, name = (blob.name or "").partition("/")
    if is_report(name):
        return None  # our own report files
    properties = getattr(blob, "blob_properties", None) or {}
    if blob.length is not None and blob.length > rt.settings.max_upload_bytes:
        etag = properties.get("ETag") or f"length-{blob.length}"
        return ingest_upload(container, name, etag, io.BytesIO, rt.ingest, size=blob.length)  # never read it
    data = blob.read()
    etag = properties.get("ETag") or hashlib.sha256(data).hexdigest()
    return ingest_upload(container, name, etag, lambda: io.BytesIO(data), rt.ingest, size=len(data))
