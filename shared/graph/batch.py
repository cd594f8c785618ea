"""JSON ``$batch`` as the docs spell it: items built here with relative URLs and only the documented
properties (msgraph-core's BatchRequestContent writes absolute URLs and a ``depends_on`` property: SDK
issues microsoftgraph/msgraph-sdk-python#1015, msgraph-sdk-python-core#1116). One HTTP call carries up to
20 requests; Graph throttles each item on its own (autopilot-graph-facts.md, JSON $batch)."""

from __future__ import annotations

import json
from typing import Any

import httpx
from kiota_abstractions.method import Method
from kiota_abstractions.native_response_handler import NativeResponseHandler
from kiota_abstractions.request_information import RequestInformation
from kiota_http.middleware.options import ResponseHandlerOption, RetryHandlerOption
from msgraph import GraphServiceClient
from msgraph.generated.models.o_data_errors.main_error import MainError
from msgraph.generated.models.o_data_errors.o_data_error import ODataError

from .autopilot import classify
from .budget_middleware import BACKGROUND_HEADER

BATCH_LIMIT = 20


async def post_batch(
    client: GraphServiceClient, requests: list[dict[str, Any]], *, background: bool = False
) -> dict[str, dict[str, Any]]:
    """POST /$batch; the answers by item id (status, headers, body). Items are not retried by the SDK
    (it cannot retry a throttled item); the whole call is not either, since its writes may be applied.
    ``background``: its writes leave part of the shared budget to other work (budget_middleware.py)."""
    if len(requests) > BATCH_LIMIT:
        raise ValueError(f"a $batch holds at most {BATCH_LIMIT} requests")
    adapter = client.request_adapter
    info = RequestInformation(Method.POST, f"{adapter.base_url}/$batch")
    info.headers.try_add("Content-Type", "application/json")
    if background:
        info.headers.try_add(BACKGROUND_HEADER, "1")
    info.content = json.dumps({"requests": requests}).encode()
    # The raw answer, whatever its status: a batch holding a throttled item answers 424 as a whole with the
    # items' answers in its body (learn.microsoft.com/graph/throttling, "Throttling and batching"), and the
    # items already applied must not be taken for failures.
    info.add_request_options([RetryHandlerOption(max_retries=0), ResponseHandlerOption(NativeResponseHandler())])
    try:
        response: httpx.Response = await adapter.send_primitive_async(info, "bytes", {"XXX": ODataError})
    except Exception as error:  # noqa: BLE001
        raise classify(error) from error
    if response.status_code not in (200, 424):
        raise classify(_batch_error(response))
    try:
        answers = response.json().get("responses", [])
    except ValueError:
        raise classify(_batch_error(response)) from None
    return {str(r.get("id")): r for r in answers}


def _batch_error(response: httpx.Response) -> ODataError:
    """The batch's own failure (malformed, throttled or failed as a whole), as the SDK would raise it."""
    try:
        detail = response.json().get("error") or {}
    except (ValueError, AttributeError):
        detail = {}
    error = ODataError(error=MainError(code=str(detail.get("code") or ""), message=str(detail.get("message") or "")))
    error.response_status_code = response.status_code or 0
    error.response_headers = dict(response.headers)
    return error
