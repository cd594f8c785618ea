import pytest

from registrar.emulators.graph import EmulatorConfig, EmulatorServer
from shared.graph.client import graph_client
from shared.graph.credentials import AsyncDevelopmentCredential


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture
def emulator():
    config = EmulatorConfig(import_processing_seconds=60, entra_delay_seconds=30, page_size=3)
    config.throttle.enabled = False
    with EmulatorServer(config) as server:
        server.ctl = server.control()
        yield server
        server.ctl.close()


@pytest.fixture
def client(emulator):
    return graph_client(AsyncDevelopmentCredential("contract-tests"), emulator.url + "/v1.0")


@pytest.fixture
def beta_client(emulator):
    return graph_client(AsyncDevelopmentCredential("contract-tests"), emulator.url + "/beta")
