"""Small helpers over the real msgraph-sdk (no patching): typed builders, plus RequestInformation for the
routes the v1.0 SDK does not generate (windowsAutopilotSettings/sync)."""

from __future__ import annotations

import base64

from kiota_abstractions.method import Method
from kiota_abstractions.request_information import RequestInformation
from kiota_http.middleware.options import RetryHandlerOption
from msgraph import GraphServiceClient
from msgraph.generated.device_management.imported_windows_autopilot_device_identities.import_.import_post_request_body import (  # noqa: E501
    ImportPostRequestBody,
)
from msgraph.generated.models.imported_windows_autopilot_device_identity import (
    ImportedWindowsAutopilotDeviceIdentity,
)
from msgraph.generated.models.o_data_errors.o_data_error import ODataError

from registrar.synthetic import build_hash

ERRORS = {"XXX": ODataError}


def identity(serial: str, hash_text: str | None = None, group_tag: str = "") -> ImportedWindowsAutopilotDeviceIdentity:
    text = hash_text if hash_text is not None else build_hash(serial)
    return ImportedWindowsAutopilotDeviceIdentity(
        serial_number=serial, hardware_identifier=base64.b64decode(text), group_tag=group_tag
    )


async def import_many(client: GraphServiceClient, identities: list[ImportedWindowsAutopilotDeviceIdentity]):
    body = ImportPostRequestBody(imported_windows_autopilot_device_identities=identities)
    result = await client.device_management.imported_windows_autopilot_device_identities.import_.post(body)
    return result.value


def no_retry():
    return [RetryHandlerOption(max_retries=0)]


async def send_raw(
    client: GraphServiceClient, method: Method, path: str, json_body: bytes | None = None, retries: bool = True
) -> None:
    """A request through the SDK's own adapter and middleware, for routes without a typed builder."""
    adapter = client.request_adapter
    info = RequestInformation(method, f"{adapter.base_url}{path}")
    if json_body is not None:
        info.set_stream_content(json_body, "application/json")
    if not retries:
        info.add_request_options(no_retry())
    await adapter.send_no_response_content_async(info, ERRORS)


async def sync(client: GraphServiceClient, retries: bool = False, version: str = "beta") -> None:
    """The Autopilot sync, on /beta where it exists (v1.0 has no windowsAutopilotSettings)."""
    adapter = client.request_adapter
    root = adapter.base_url.rstrip("/").removesuffix("/v1.0") + f"/{version}"
    info = RequestInformation(Method.POST, f"{root}/deviceManagement/windowsAutopilotSettings/sync")
    if not retries:
        info.add_request_options(no_retry())
    await adapter.send_no_response_content_async(info, ERRORS)


async def all_pages(client: GraphServiceClient, first) -> list:
    """Every item of a paged collection, following @odata.nextLink with msgraph-core's PageIterator."""
    from msgraph_core import PageIterator

    items: list = []
    await PageIterator(first, client.request_adapter).iterate(lambda item: items.append(item) or True)
    return items
