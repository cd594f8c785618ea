"""Real Azurite (one per test worker) and a real Graph emulator (one per test)."""

from __future__ import annotations

import json
import uuid

import pytest

from registrar.emulators.graph import EmulatorConfig, EmulatorServer
from registrar.localhost.azurite import Azurite
from registrar.localhost.host import LocalHost
from shared.config import load_settings
from shared.storage import blob_service

STANDARD_GROUP = "11111111-1111-4111-8111-111111111111"
KIOSK_GROUP = "22222222-2222-4222-8222-222222222222"
PROFILES = {
    "profiles": {
        "standard": {"groupTag": "Standard", "groupId": STANDARD_GROUP},
        "kiosk": {"groupTag": "Kiosk", "groupId": KIOSK_GROUP},
    },
    "partners": {"contoso": {"profiles": ["standard"]}},
}


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture(scope="session")
def azurite():
    with Azurite() as storage:
        yield storage


@pytest.fixture
def graph():
    config = EmulatorConfig(import_processing_seconds=0, entra_delay_seconds=0, page_size=50)
    config.throttle.enabled = False
    with EmulatorServer(config) as server:
        server.ctl = server.control()
        server.ctl.seed(
            groups=[
                {"id": STANDARD_GROUP, "displayName": "Autopilot Standard"},
                {"id": KIOSK_GROUP, "displayName": "Autopilot Kiosk"},
            ]
        )
        yield server
        server.ctl.close()


@pytest.fixture
def env(azurite, graph):
    suffix = uuid.uuid4().hex[:8]
    return {
        "REGISTRAR_PROFILES": json.dumps(PROFILES),
        "AzureWebJobsStorage": azurite.connection_string,
        "GRAPH_BASE_URL": graph.url + "/v1.0",
        "GRAPH_CREDENTIAL": "development",
        "REGISTRATION_QUEUE": f"registrations-{suffix}",
        "STATE_TABLE_PREFIX": f"t{suffix}",
        "UPLOAD_EVENTS_QUEUE": f"upload-events-{suffix}",  # each test its own upload-event journal
        "AZURE_TENANT_ID": "contoso-test",
        "FLEET_CHECK_SECONDS": "0",  # a full drift check every run (test_fleet.py covers the interval)
        "RECONCILE_CLEANUP_SECONDS": "5",  # a timer run of a test never waits long for the write budget
    }


@pytest.fixture
def settings(env):
    return load_settings(env)


@pytest.fixture
def host(settings):
    service = blob_service(settings)
    for container in service.list_containers():  # each test starts with empty upload areas
        service.delete_container(container.name)
    local = LocalHost(settings, reconcile_interval=0)
    yield local


def upload(settings, container: str, name: str, data: bytes) -> None:
    blob_service(settings).get_blob_client(container, name).upload_blob(data, overwrite=True)
