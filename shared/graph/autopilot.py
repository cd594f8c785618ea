"""The Autopilot calls the product makes, on the real ``msgraph-sdk``, with errors sorted into
"try again later" and "will never work"."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import httpx
from kiota_abstractions.api_error import APIError
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_abstractions.method import Method
from kiota_abstractions.request_information import RequestInformation
from kiota_http.middleware.options import HeadersInspectionHandlerOption, RetryHandlerOption
from msgraph import GraphServiceClient
from msgraph.generated.device_management.imported_windows_autopilot_device_identities.import_.import_post_request_body import (  # noqa: E501
    ImportPostRequestBody,
)
from msgraph.generated.models.imported_windows_autopilot_device_identity import ImportedWindowsAutopilotDeviceIdentity
from msgraph.generated.models.o_data_errors.o_data_error import ODataError

from ..messages import RegistrationMessage


class GraphUnavailable(Exception):
    """Throttled, a 5xx, or the network: the same call can succeed later.

    ``maybe_applied`` is true when Graph may have carried out the call although the answer never arrived
    (a 5xx, or a connection that broke after sending): a non-idempotent POST must then be
    looked up, not repeated.
    """

    def __init__(self, message: str, retry_after: float = 0.0, *, maybe_applied: bool = False, status: int = 0) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after
        self.maybe_applied = maybe_applied

    @property
    def throttled(self) -> bool:
        """429: Graph asked us to wait; nothing is wrong with the call or the service."""
        return self.status == 429


class GraphRefused(Exception):
    """A 4xx other than 429: repeating the call will not help."""

    def __init__(self, status: int, code: str, message: str, request_id: str = "") -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.request_id = status, code, message, request_id
        self.at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")  # when Graph refused: support asks for it

    def __str__(self) -> str:
        """What an admin reads in a report: the status and code say which refusal it was, the request-id
        and time are what Microsoft support asks for."""
        where = f" (request-id {self.request_id}, {self.at})" if self.request_id else ""
        return f"Graph refused ({self.status} {self.code}): {self.message}{where}"


@dataclass(frozen=True, slots=True)
class ImportResult:
    records: list[ImportedRecord]
    request_id: str  # Graph's request-id of the import call
    at: str  # when it answered, UTC


@dataclass(frozen=True, slots=True)
class ImportedRecord:
    id: str
    serial: str
    status: str  # unknown, pending, partial, complete, error
    registration_id: str
    error_code: int
    error_name: str


def _record(item: ImportedWindowsAutopilotDeviceIdentity) -> ImportedRecord:
    state = item.state
    status = state.device_import_status.value if state and state.device_import_status else "unknown"
    return ImportedRecord(
        id=item.id or "",
        serial=item.serial_number or "",
        status=status,
        registration_id=(state.device_registration_id or "") if state else "",
        error_code=(state.device_error_code or 0) if state else 0,
        error_name=(state.device_error_name or "") if state else "",
    )


def classify(error: Exception) -> Exception:
    """Turn SDK and transport errors into :class:`GraphUnavailable` or :class:`GraphRefused`."""
    if isinstance(error, httpx.HTTPError):
        # A request that reached Graph may have been carried out before the connection broke.
        sent = not isinstance(error, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
        return GraphUnavailable(f"network error talking to Graph: {type(error).__name__}", maybe_applied=sent)
    if isinstance(error, APIError):
        status = error.response_status_code or 0
        headers = {k.lower(): v for k, v in (error.response_headers or {}).items()}
        request_id = str(headers.get("request-id") or headers.get("client-request-id") or "")
        odata = getattr(error, "error", None)
        code = getattr(odata, "code", "") or ""
        message = getattr(odata, "message", "") or str(error.message or "")
        if status == 429 or status >= 500 or status == 0:
            retry = headers.get("retry-after")
            try:
                seconds = float(retry) if retry else 0.0
            except ValueError:
                seconds = 0.0
            # 429 means "not done"; a 5xx (or no status) may come after the service applied the call
            # (autopilot-graph-facts.md, Throttling: "a 503/504 can come after the service already applied").
            message = f"Graph answered {status} {code}".strip()
            return GraphUnavailable(message, seconds, maybe_applied=status != 429, status=status)
        return GraphRefused(status, code, message, request_id)
    return error


class AutopilotClient:
    def __init__(self, client: GraphServiceClient, max_batch_writes: int = 20) -> None:
        self._client = client
        self._max_batch_writes = max_batch_writes
        self._imports = client.device_management.imported_windows_autopilot_device_identities

    async def import_devices(self, messages: list[RegistrationMessage]) -> ImportResult:
        """One ``import`` action for the whole batch: one write against the throttle budget, not N. The
        answer's ``request-id`` and time are kept: they are what Microsoft support asks for if an import
        fails later."""
        body = ImportPostRequestBody(
            imported_windows_autopilot_device_identities=[
                ImportedWindowsAutopilotDeviceIdentity(
                    serial_number=m.serial,
                    hardware_identifier=base64.b64decode(m.hardware_hash),
                    group_tag=m.group_tag or None,
                    product_key=m.product_key or None,
                    assigned_user_principal_name=m.assigned_user or None,
                )
                for m in messages
            ]
        )
        # No SDK retries: kiota's retry handler would repeat the POST on 503/504, which may import twice.
        # Register decides: 429 -> a scheduled copy, a maybe-applied failure -> look the devices up first.
        inspect = HeadersInspectionHandlerOption(inspect_response_headers=True)
        config = RequestConfiguration(options=[RetryHandlerOption(max_retries=0), inspect])
        try:
            result = await self._imports.import_.post(body, config)
        except Exception as error:  # noqa: BLE001 - sorted by classify
            raise classify(error) from error
        headers = inspect.response_headers
        request_id = next(iter(headers.get("request-id") or headers.get("client-request-id") or []), "")
        at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return ImportResult([_record(item) for item in (result.value if result else [])], request_id, at)

    async def list_imports(self) -> list[ImportedRecord]:
        """Every imported identity, following @odata.nextLink (one call per page, not per device)."""
        path = "/deviceManagement/importedWindowsAutopilotDeviceIdentities"
        return [_record_json(item) for item in await list_raw(self._client, path, IMPORT_FIELDS)]

    async def list_devices(self) -> list[AutopilotDevice]:
        return await list_autopilot_devices(self._client)

    async def delete_imports(
        self, identity_ids: list[str], until: float | None = None, *, background: bool = True
    ) -> list[str]:
        """Delete processed import records, 20 per ``$batch`` HTTP call (each item is a write Graph counts),
        as ``background`` work: they leave a fifth of the shared budget to registration and repairs. Returns the
        ids that are gone (deleted, or 404: already gone). When Graph or the budget says "later", waits and
        goes on while ``until`` (a ``time.monotonic()`` deadline) allows, so clean-up keeps the budget's pace
        for the whole time it is given; without ``until`` it stops there (the next run goes on)."""
        from .batch import BATCH_LIMIT, post_batch  # batch imports this module: a late import

        gone: list[str] = []
        size = min(BATCH_LIMIT, self._max_batch_writes)
        pending = list(identity_ids)
        backoff = FIRST_BACKOFF  # the wait after the next 429 without Retry-After; doubled while they go on
        while pending:
            if until is not None and time.monotonic() > until:
                break
            chunk, pending = pending[:size], pending[size:]
            requests = [
                {
                    "id": str(n),
                    "method": "DELETE",
                    "url": f"/deviceManagement/importedWindowsAutopilotDeviceIdentities/{i}",
                }
                for n, i in enumerate(chunk)
            ]
            later: list[str] = []  # to send again after a wait: the whole batch, or its items told "later"
            wait = 0.0
            try:
                answers = await post_batch(self._client, requests, background=background)
            except GraphUnavailable as error:
                if not error.throttled:
                    pending = chunk + pending
                    break
                later, wait = chunk, error.retry_after
            else:
                for n, identity_id in enumerate(chunk):
                    answer = answers.get(str(n), {})
                    status = int(answer.get("status") or 0)
                    if 200 <= status < 300 or status == 404:
                        gone.append(identity_id)
                    elif status == 429 or status >= 500 or status == 0:
                        later.append(identity_id)
                        wait = max(wait, _retry_after(answer))
                    # any other refusal stays in the clean-up list for the next run
                if not later:
                    backoff = FIRST_BACKOFF
                    continue
            pending = later + pending
            if not wait:  # throttled without a Retry-After: wait longer each time (exponential backoff)
                wait, backoff = backoff, min(backoff * 2, MAX_BACKOFF)
            if not await _wait_within(wait, until):
                break
        return gone


# Clean-up's wait after a 429 without Retry-After (Intune's usual), doubled each time it happens again in a row.
FIRST_BACKOFF = 5.0
MAX_BACKOFF = 60.0


async def _wait_within(seconds: float, until: float | None) -> bool:
    """Sleep ``seconds`` if that still ends before ``until``; False (no sleep) otherwise or without one."""
    if until is None or time.monotonic() + seconds > until:
        return False
    await asyncio.sleep(seconds)
    return True


def _retry_after(answer: dict[str, Any]) -> float:
    """A ``$batch`` item's own Retry-After (seconds), 0 when it has none."""
    headers = {str(k).lower(): v for k, v in (answer.get("headers") or {}).items()}
    try:
        return float(headers.get("retry-after", 0))
    except (TypeError, ValueError):
        return 0.0


@dataclass(frozen=True, slots=True)
class AutopilotDevice:
    id: str
    serial: str
    group_tag: str
    aad_device_id: str
    enrollment_state: str
    last_contacted: str  # ISO 8601; "0001-01-01..." when never


# The properties the product reads: lists ask for these only ($select), and are read as JSON, not as SDK
# objects (msgraph-sdk's parsing costs 7-10 ms per entity; json.loads about 6 us).
DEVICE_FIELDS = "id,serialNumber,groupTag,azureActiveDirectoryDeviceId,enrollmentState,lastContactedDateTime"
IMPORT_FIELDS = "id,serialNumber,state"


async def list_raw(
    client: GraphServiceClient, path: str, select: str, top: int | None = None
) -> list[dict[str, Any]]:
    """Every item of a collection as plain JSON with ``$select``, following ``@odata.nextLink`` page by page
    (one call per page, never per item). msgraph-sdk still authenticates, retries reads and throttles."""
    adapter = client.request_adapter
    query = {"$select": select, **({"$top": str(top)} if top else {})}
    url: str | None = f"{adapter.base_url}{path}?" + urlencode(query)
    items: list[dict[str, Any]] = []
    try:
        while url:
            info = RequestInformation(Method.GET, url)
            info.headers.try_add("Accept", "application/json")
            page = json.loads(await adapter.send_primitive_async(info, "bytes", {"XXX": ODataError}) or b"{}")
            items.extend(page.get("value") or [])
            url = page.get("@odata.nextLink")
    except Exception as error:  # noqa: BLE001
        raise classify(error) from error
    return items


async def list_autopilot_devices(client: GraphServiceClient) -> list[AutopilotDevice]:
    """Every Autopilot device, paged: one read per page for the whole tenant."""
    return [
        _device_json(item)
        for item in await list_raw(client, "/deviceManagement/windowsAutopilotDeviceIdentities", DEVICE_FIELDS)
    ]


def _device_json(item: dict[str, Any]) -> AutopilotDevice:
    return AutopilotDevice(
        id=str(item.get("id") or ""),
        serial=str(item.get("serialNumber") or ""),
        group_tag=str(item.get("groupTag") or ""),
        aad_device_id=str(item.get("azureActiveDirectoryDeviceId") or ""),
        enrollment_state=str(item.get("enrollmentState") or "unknown"),
        last_contacted=_iso(item.get("lastContactedDateTime")),
    )


def _iso(value: object) -> str:
    """Graph's ``...Z`` timestamps in the form the state store has always kept (``+00:00``)."""
    if not value:
        return ""
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).isoformat()
    except ValueError:
        return str(value)


def _record_json(item: dict[str, Any]) -> ImportedRecord:
    state = item.get("state") or {}
    return ImportedRecord(
        id=str(item.get("id") or ""),
        serial=str(item.get("serialNumber") or ""),
        status=str(state.get("deviceImportStatus") or "unknown"),
        registration_id=str(state.get("deviceRegistrationId") or ""),
        error_code=int(state.get("deviceErrorCode") or 0),
        error_name=str(state.get("deviceErrorName") or ""),
    )
