"""Azure Functions entry point: wiring only (triggers and bindings). Logic lives in ``functions/``.

One blob trigger per upload container is generated from the profiles configuration (``device-uploads``
and ``partner-<id>`` for each partner), all on Event Grid as the Flex Consumption plan requires. Blob
triggers take the SDK-type ``BlobClient`` (azurefunctions-extensions-bindings-blob): the host reads no
byte of the upload; ingest streams it.

Annotations are evaluated at import (no ``from __future__ import annotations``) and must be what the
Python worker accepts: ``typing.List[...]`` for batches, never PEP 585 ``list[...]`` ("invalid non-type
annotation" fails indexing of the whole app). tests/functions_host/ indexes this file with the worker.
"""

import os
import typing

import azure.functions as func
import azurefunctions.extensions.bindings.blob as blob

from functions import ingest, reconcile, register, status
from shared.config import ADMIN_CONTAINER, DATA_STORAGE, PARTNER_CONTAINER_PREFIX, ConfigError, load_profiles

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)

# The partner functions come from the profiles document (REGISTRAR_PROFILES), the same document Bicep
# derives the partner containers and Event Grid subscriptions from. A missing or invalid document fails
# indexing loudly (the worker reports this ConfigError; no function runs), never an app that indexes
# without its partner functions while their events are dropped as FunctionNotFound.
try:
    _PARTNERS = sorted(load_profiles(os.environ).partners)
except ConfigError as _error:
    raise ConfigError(f"function app not indexed: {_error}") from None


def _partners() -> list[str]:
    return _PARTNERS


def _containers() -> list[str]:
    return [ADMIN_CONTAINER] + [PARTNER_CONTAINER_PREFIX + p for p in _partners()]


def _blob_function(container: str) -> None:
    name = "ingest_" + container.replace("-", "_")

    @app.function_name(name)
    @app.blob_trigger(
        arg_name="client",
        path=f"{container}/{{name}}",
        connection=DATA_STORAGE,  # the data account (uploads); never the host's AzureWebJobsStorage
        source=func.BlobSource.EVENT_GRID,
    )
    def run(client: blob.BlobClient) -> None:
        ingest.main(client)


for _container in _containers():
    _blob_function(_container)


@app.function_name("register")
@app.service_bus_queue_trigger(
    arg_name="messages",
    queue_name="%REGISTRATION_QUEUE%",
    connection="ServiceBusConnection",
    cardinality=func.Cardinality.MANY,
)
async def register_devices(messages: typing.List[func.ServiceBusMessage]) -> None:  # noqa: UP006 - the worker rejects list[...]
    await register.main(messages)


@app.function_name("reconcile")
@app.timer_trigger(arg_name="timer", schedule="%RECONCILE_SCHEDULE%", run_on_startup=False)
async def reconcile_devices(timer: func.TimerRequest) -> None:
    await reconcile.main(timer)


@app.function_name("status_devices")
@app.route(route="devices", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def status_devices(req: func.HttpRequest) -> func.HttpResponse:
    return status.devices(req)


@app.function_name("status_upload")
@app.route(route="uploads/{upload_id}", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def status_upload(req: func.HttpRequest) -> func.HttpResponse:
    return status.upload(req)


def _partner_status(partner: str) -> None:
    """Per-partner functions: each has its own function keys, handed only to that partner."""
    suffix = partner.replace("-", "_")

    @app.function_name(f"status_partner_{suffix}_devices")
    @app.route(route=f"partners/{partner}/devices", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
    def partner_devices(req: func.HttpRequest) -> func.HttpResponse:
        return status.devices(req, partner=partner)

    @app.function_name(f"status_partner_{suffix}_upload")
    @app.route(route=f"partners/{partner}/uploads/{{upload_id}}", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
    def partner_upload(req: func.HttpRequest) -> func.HttpResponse:
        return status.upload(req, partner=partner)


for _partner in _partners():
    _partner_status(_partner)


# The admin portal (page, files, API): anonymous to the Functions host, because App Service Authentication
# (Entra ID, infra/modules/portal-auth.bicep) signs every caller in first; functions/portal.py checks the
# principal on every call.
from functions import portal  # noqa: E402 - kept with its route: the wiring above is another block


@app.function_name("portal")
@app.route(route="portal/{*path}", methods=["GET", "POST"], auth_level=func.AuthLevel.ANONYMOUS)
def portal_http(req: func.HttpRequest) -> func.HttpResponse:
    return portal.main(req)
