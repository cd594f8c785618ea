"""The portal's API: what each page asks for, decided for one signed-in principal.

Every answer is filtered by the principal: a partner's queries always carry ``partner eq <own id>`` on the
server, a device or upload of another partner answers 404 exactly like a missing one, and a partner's
upload address is always in its own container. Nothing here reads every device: lists are pages of
the state store (``shared/devices_query.py``).
"""

from __future__ import annotations

import csv
import io
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import BlobSasPermissions, BlobServiceClient, generate_blob_sas

from ..config import ADMIN_CONTAINER, PARTNER_CONTAINER_PREFIX, ProfilesDocument
from ..devices_query import MAX_PAGE, BadQuery, device_page, device_view
from ..history import note, timeline
from ..ingest import upload_id_for
from ..queue import MessageSender
from ..reports import DEVICE_COLUMNS, device_cells, report_paths
from ..requeue import replay_failed
from ..routing import UploadRejected, route
from ..state import UPLOADS_PARTITION, DeviceRecord, StateStore, UploadRecord, _name_key
from ..states import DISPLAY, DeviceState
from ..status_api import device_filter
from .auth import Principal
from .licences import LicenceChecker

SAS_MINUTES = 15
MAX_EXPORT = 100_000
SAS_PARTITION = "portalupload"  # who asked for an upload address: the Uploads page's "sent by"
_SAFE_STEM = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(slots=True)
class Answer:
    status: int
    body: Any = None  # JSON-able, or bytes with content_type
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def error(status: int, code: str, message: str) -> Answer:
    return Answer(status, {"error": {"code": code, "message": message}})


@dataclass(slots=True)
class PortalContext:
    store: StateStore
    profiles: ProfilesDocument
    blobs: BlobServiceClient
    sender: MessageSender
    tenant: str
    licences: LicenceChecker | None = None


# -- who am I ----------------------------------------------------------------------------------------------------
def me(ctx: PortalContext, who: Principal) -> Answer:
    profiles = _profiles_for(ctx, who)
    return Answer(
        200,
        {
            "name": who.name,
            "role": "admin" if who.is_admin else "partner",
            "partner": who.partner,
            "profiles": profiles,
            "partners": sorted(ctx.profiles.partners) if who.is_admin else [who.partner],
            "states": sorted({DISPLAY[s] for s in DeviceState}),
        },
    )


def _profiles_for(ctx: PortalContext, who: Principal) -> list[str]:
    if who.is_admin:
        return sorted(ctx.profiles.profiles)
    return sorted(ctx.profiles.partners[who.partner].profiles) if who.partner in ctx.profiles.partners else []


# -- devices -----------------------------------------------------------------------------------------------------
def devices(ctx: PortalContext, who: Principal, query: dict[str, str]) -> Answer:
    try:
        where = device_filter(query, who.partner)
        top = int(query.get("top") or 100)
        page = device_page(ctx.store, where, top, query.get("cursor") or None)
    except (BadQuery, ValueError) as bad:
        return error(400, "BadQuery", str(bad))
    views = [_with_licence(ctx, device_view(d), d) for d in page.devices]
    return Answer(200, {"value": views, "count": len(views), "cursor": page.cursor, "storageCalls": page.calls})


def export_devices(ctx: PortalContext, who: Principal, query: dict[str, str]) -> Answer:
    """The current view (its filters, every page of it) as CSV, the columns of devices.csv."""
    try:
        where = device_filter(query, who.partner)
    except BadQuery as bad:
        return error(400, "BadQuery", str(bad))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(DEVICE_COLUMNS)
    cursor, written = query.get("cursor") or None, 0
    cursor = None  # an export is the whole view, from its start
    while written < MAX_EXPORT:
        try:
            page = device_page(ctx.store, where, MAX_PAGE, cursor)
        except BadQuery as bad:
            return error(400, "BadQuery", str(bad))
        for record in page.devices:
            writer.writerow(device_cells(record))
        written += len(page.devices)
        cursor = page.cursor
        if not cursor:
            break
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return Answer(
        200,
        buffer.getvalue().encode("utf-8-sig"),
        "text/csv; charset=utf-8",
        {"Content-Disposition": f'attachment; filename="devices-{stamp}.csv"'},
    )


def _visible_device(ctx: PortalContext, who: Principal, serial: str) -> DeviceRecord | None:
    record = ctx.store.get_device(serial)
    if record is None or (who.partner is not None and record.partner != who.partner):
        return None  # another partner's device is indistinguishable from a missing one
    return record


def device_detail(ctx: PortalContext, who: Principal, serial: str) -> Answer:
    record = _visible_device(ctx, who, serial)
    if record is None:
        return error(404, "NotFound", f"no device {serial!r}")
    view = _with_licence(ctx, device_view(record), record)
    view["timeline"] = [e.as_dict() for e in timeline(ctx.store, record)]
    view["actions"] = ["retry"] if record.state == DeviceState.FAILED and record.hardware_hash else []
    view["attempts"] = record.attempts
    view["importId"] = record.import_id or None
    view["autopilotId"] = record.autopilot_id or None
    view["entraObjectId"] = record.entra_object_id or None
    return Answer(200, view)


def retry(ctx: PortalContext, who: Principal, serial: str) -> Answer:
    """The one action the portal offers: a failed device gets a new registration attempt."""
    if _visible_device(ctx, who, serial) is None:
        return error(404, "NotFound", f"no device {serial!r}")
    record = replay_failed(ctx.store, ctx.sender, ctx.tenant, serial)
    if record is None:
        return error(409, "NotRetryable", "only a device in Registration failed (with its hash kept) can be retried")
    note(ctx.store, serial, "action", f"Retried by {who.name} ({who.sender})")
    return Answer(200, device_view(record))


def _with_licence(ctx: PortalContext, view: dict[str, Any], record: DeviceRecord) -> dict[str, Any]:
    if ctx.licences is None or record.state != DeviceState.READY or not record.assigned_user:
        return view
    required = ctx.licences.required(record.profile)
    if not required:
        return view
    missing = ctx.licences.missing(record.assigned_user, required)
    if missing:
        view["licenceMissing"] = missing
        view["state"] = f"Ready for user, but {record.assigned_user} lacks {', '.join(missing)}"
    return view


# -- uploads -----------------------------------------------------------------------------------------------------
def uploads(ctx: PortalContext, who: Principal, query: dict[str, str]) -> Answer:
    """One page of uploads (the uploads table's own order), newest first within the page."""
    filter_, values = f"PartitionKey eq '{UPLOADS_PARTITION}'", {}
    if who.partner is not None:
        filter_ += " and partner eq @p"
        values["p"] = who.partner
    token = None
    if query.get("cursor"):
        from ..devices_query import decode_cursor

        try:
            token = decode_cursor(query["cursor"])
        except BadQuery as bad:
            return error(400, "BadQuery", str(bad))
    pages = ctx.store.uploads.query_entities(filter_, parameters=values or None, results_per_page=200).by_page(
        continuation_token=token
    )
    records = [UploadRecord.from_entity(e) for e in next(pages)]
    from ..devices_query import encode_cursor

    items = [_upload_summary(ctx, u) for u in sorted(records, key=lambda u: u.received, reverse=True)]
    return Answer(200, {"value": items, "cursor": encode_cursor(pages.continuation_token)})


def _upload_summary(ctx: PortalContext, upload: UploadRecord) -> dict[str, Any]:
    by = _sent_by(ctx, upload)
    return {
        "uploadId": upload.upload_id,
        "container": upload.container,
        "file": upload.blob_name,
        "profile": upload.profile,
        "sender": by,
        "status": upload.status,
        "reason": upload.reason or None,
        "received": upload.received,
        "counts": {
            "accepted": upload.accepted,
            "duplicates": upload.duplicates,
            "moved": upload.moved,
            "rejected": upload.rejected,
        },
        "report": f"{upload.container}/{report_paths(upload.blob_name, upload.upload_id)[0]}",
    }


def _sent_by(ctx: PortalContext, upload: UploadRecord) -> str:
    base = "admin" if not upload.partner else f"partner {upload.partner}"
    try:
        entity = ctx.store.uploads.get_entity(SAS_PARTITION, _name_key(upload.container, upload.blob_name))
    except ResourceNotFoundError:
        return base
    return f"{base} ({entity.get('by', '')}, portal)"


def upload_detail(ctx: PortalContext, who: Principal, upload_id: str) -> Answer:
    upload = ctx.store.get_upload(upload_id)
    if upload is None or (who.partner is not None and upload.partner != who.partner):
        return error(404, "NotFound", f"no upload {upload_id!r}")
    body = _upload_summary(ctx, upload)
    body["rows"] = [r.as_dict() for r in ctx.store.rows_of(upload_id)]
    from ..devices_query import DeviceFilter

    page = device_page(ctx.store, DeviceFilter(upload=upload_id, partner=who.partner), MAX_PAGE)
    body["devices"] = [_with_licence(ctx, device_view(d), d) for d in page.devices]
    body["moreDevices"] = page.cursor is not None
    return Answer(200, body)


def report(ctx: PortalContext, who: Principal, upload_id: str) -> Answer:
    upload = ctx.store.get_upload(upload_id)
    if upload is None or (who.partner is not None and upload.partner != who.partner):
        return error(404, "NotFound", f"no upload {upload_id!r}")
    path = report_paths(upload.blob_name, upload.upload_id)[0]
    try:
        data = ctx.blobs.get_blob_client(upload.container, path).download_blob().readall()
    except ResourceNotFoundError:
        return error(404, "NotFound", "the report is not written yet")
    name = path.rsplit("/", 1)[-1]
    return Answer(200, data, "text/csv; charset=utf-8", {"Content-Disposition": f'attachment; filename="{name}"'})


# -- register devices: an upload address for the browser ------------------------------------------------------------
def upload_address(ctx: PortalContext, who: Principal, body: dict[str, Any]) -> Answer:
    """A short-lived, create-only SAS for one new blob in the caller's own upload container: the browser
    sends the file straight to storage (no file passes through the function). In Azure the SAS is a user
    delegation SAS (signed with a key from Entra, for the app's identity); with an account key (Azurite)
    an account-key service SAS, as Azurite has no user delegation keys."""
    profile = str(body.get("profile") or "")
    file_name = str(body.get("fileName") or "")
    if profile not in _profiles_for(ctx, who):
        return error(400, "BadProfile", f"profile {profile!r} is not one you can register to")
    stem = _SAFE_STEM.sub("-", file_name.rsplit("/", 1)[-1].rsplit("\\", 1)[-1]).strip("-.") or "devices"
    stem = stem[:-4] if stem.lower().endswith(".csv") else stem
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    blob_name = f"{profile}/{stem[:80]}-{stamp}-{uuid.uuid4().hex[:6]}.csv"
    container = ADMIN_CONTAINER if who.is_admin else PARTNER_CONTAINER_PREFIX + str(who.partner)
    try:
        route(container, blob_name, ctx.profiles)
    except UploadRejected as rejected:
        return error(400, rejected.code, rejected.reason)
    start = datetime.now(UTC) - timedelta(minutes=1)
    expiry = datetime.now(UTC) + timedelta(minutes=SAS_MINUTES)
    permission = BlobSasPermissions(create=True)  # a new blob only: cannot read, list, overwrite or delete
    credential = ctx.blobs.credential
    account = ctx.blobs.account_name
    if getattr(credential, "account_key", None):
        sas = generate_blob_sas(
            account, container, blob_name, account_key=credential.account_key, permission=permission,
            start=start, expiry=expiry, protocol=None,
        )  # fmt: skip
        kind = "account-key SAS (local storage emulator)"
    else:
        key = ctx.blobs.get_user_delegation_key(start, expiry)
        sas = generate_blob_sas(
            account, container, blob_name, user_delegation_key=key, permission=permission,
            start=start, expiry=expiry, protocol="https",
        )  # fmt: skip
        kind = "user delegation SAS"
    ctx.store.uploads.upsert_entity(
        {"PartitionKey": SAS_PARTITION, "RowKey": _name_key(container, blob_name), "by": who.name, "blob": blob_name}
    )
    url = f"{ctx.blobs.get_blob_client(container, blob_name).url}?{sas}"
    return Answer(
        200,
        {
            "url": url,
            "container": container,
            "blob": blob_name,
            "expiresOn": expiry.isoformat(timespec="seconds"),
            "kind": kind,
            "headers": {"x-ms-blob-type": "BlockBlob", "Content-Type": "text/csv"},
        },
    )


def locate_upload(ctx: PortalContext, who: Principal, query: dict[str, str]) -> Answer:
    """The upload id of a blob the browser just sent (from its ETag), in the caller's own container."""
    container = ADMIN_CONTAINER if who.is_admin else PARTNER_CONTAINER_PREFIX + str(who.partner)
    blob_name = query.get("blob") or ""
    try:
        route(container, blob_name, ctx.profiles)
        props = ctx.blobs.get_blob_client(container, blob_name).get_blob_properties()
    except (UploadRejected, ResourceNotFoundError):
        return error(404, "NotFound", "no such upload in your area")
    upload_id = upload_id_for(container, blob_name, props.etag)
    return Answer(200, {"uploadId": upload_id, "received": ctx.store.get_upload(upload_id) is not None})
