"""Azure Functions entry point: wiring only (triggers and bindings). Logic lives in ``functions/``.

One blob trigger per upload container is generated from the profiles configuration (``device-uploads``
and ``partner-<id>`` for each partner), all on Event Grid as the Flex Consumption plan requires.
"""

from __future__ import annotations

import os

import azure.functions as func

from functions import ingest, reconcile, register
from shared.config import ADMIN_CONTAINER, PARTNER_CONTAINER_PREFIX, ConfigError, load_profiles

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)


def _containers() -> list[str]:
    try:
        partners = sorted(load_profiles(os.environ).partners)
    except ConfigError:
        partners = []  # the first trigger to run reports the configuration error in full
    return [ADMIN_CONTAINER] + [PARTNER_CONTAINER_PREFIX + p for p in partners]


def _blob_function(container: str) -> None:
    name = "ingest_" + container.replace("-", "_")

    @app.function_name(name)
    @app.blob_trigger(
        arg_name="blob",
        path=f"{container}/{{name}}",
        connection="AzureWebJobsStorage",
        source=func.BlobSource.EVENT_GRID,
    )
    def run(blob: func.InputStream) -> None:
        ingest.main(blob)


for _container in _containers():
    _blob_function(_container)


@app.function_name("register")
@app.service_bus_queue_trigger(
    arg_name="messages",
    queue_name="%REGISTRATION_QUEUE%",
    connection="ServiceBusConnection",
    cardinality=func.Cardinality.MANY,
)
async def register_devices(messages: list[func.ServiceBusMessage]) -> None:
    await register.main(messages)


@app.function_name("reconcile")
@app.timer_trigger(arg_name="timer", schedule="%RECONCILE_SCHEDULE%", run_on_startup=False)
async def reconcile_devices(timer: func.TimerRequest) -> None:
    await reconcile.main(timer)
