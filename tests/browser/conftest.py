"""The portal in a real browser: Debian's headless Chromium driven through chromedriver (selenium), against
the whole local stack (Azurite, the Graph emulator, the local host's triggers running, the portal's
local HTTP front). `make test` installs the browser when it is missing (`make browser`)."""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
import threading
import uuid
from pathlib import Path

import pytest

from registrar.emulators.graph import EmulatorConfig, EmulatorServer
from registrar.localhost.azurite import Azurite
from registrar.localhost.host import LocalHost
from registrar.localhost.http import PortalFront
from shared.config import load_settings

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"
STANDARD_GROUP = "11111111-1111-4111-8111-111111111111"
KIOSK_GROUP = "22222222-2222-4222-8222-222222222222"
PROFILES = {
    "profiles": {
        "standard": {"groupTag": "Standard", "groupId": STANDARD_GROUP},
        "kiosk": {"groupTag": "Kiosk", "groupId": KIOSK_GROUP},
    },
    "partners": {"contoso": {"profiles": ["standard"]}, "fabrikam": {"profiles": ["standard"]}},
}


@pytest.fixture(scope="module")
def stack():
    """Everything `registrar dev` runs, with the triggers running in the background."""
    with Azurite() as storage, EmulatorServer(EmulatorConfig(import_processing_seconds=1, entra_delay_seconds=0)) as graph:
        control = graph.control()
        control.seed(groups=[{"id": STANDARD_GROUP, "displayName": "Std"}, {"id": KIOSK_GROUP, "displayName": "Kiosk"}])
        suffix = uuid.uuid4().hex[:8]
        settings = load_settings(
            {
                "REGISTRAR_PROFILES": json.dumps(PROFILES),
                "AzureWebJobsStorage": storage.connection_string,
                "GRAPH_BASE_URL": graph.url + "/v1.0",
                "GRAPH_CREDENTIAL": "development",
                "REGISTRATION_QUEUE": f"registrations-{suffix}",
                "STATE_TABLE_PREFIX": f"b{suffix}",
                "AZURE_TENANT_ID": "browser-test",
                "GRAPH_WRITE_BUDGET": "",
            }
        )
        host = LocalHost(settings, reconcile_interval=1.0)
        loop = asyncio.new_event_loop()
        stop = asyncio.Event()
        runner = threading.Thread(target=loop.run_until_complete, args=(host.run(stop, poll_interval=0.3),), daemon=True)
        runner.start()
        front = PortalFront(settings).start()
        try:
            yield {"settings": settings, "host": host, "front": front, "graph": control}
        finally:
            front.stop()
            loop.call_soon_threadsafe(stop.set)
            runner.join(timeout=10)
            control.close()


@pytest.fixture(scope="module")
def browser():
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.fail("Chromium is not installed: run `make browser` (Debian packages chromium, chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        "--window-size=1280,900",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_window_size(1280, 900)
    SHOTS.mkdir(parents=True, exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
