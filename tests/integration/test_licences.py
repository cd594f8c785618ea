"""The licence check on Azurite and the Graph emulator: a Ready device whose assigned user lacks a licence its
profile requires says so, everywhere its message is shown, until the licence is assigned."""

import copy
import json
from datetime import UTC, datetime, timedelta

import pytest

from functions import reconcile
from registrar.localhost.host import LocalTimerRequest
from shared.config import load_settings
from shared.fleet import reconcile_fleet
from shared.states import DeviceState
from shared.status_api import list_devices
from tests.helpers import csv_bytes, portal_row
from tests.integration.conftest import PROFILES, upload

pytestmark = [pytest.mark.anyio, pytest.mark.integration]
ANN = "ann@contoso.com"


@pytest.fixture
def settings(env):
    """The standard profile requires two licences; kiosk requires none."""
    profiles = copy.deepcopy(PROFILES)
    profiles["profiles"]["standard"]["requiredLicenses"] = ["SPE_E3", "INTUNE_A"]
    return load_settings({**env, "REGISTRAR_PROFILES": json.dumps(profiles)})


def _licence_calls(graph) -> dict[str, int]:
    requests = graph.ctl.counters()["requests"]
    return {k: n for k, n in requests.items() if " users." in k or " subscribedSkus." in k}


async def _settle(host):
    for _ in range(4):
        await host.step()  # ingest, register, poll imports, fleet (with the licence check)


async def test_a_user_without_a_required_licence_is_named_until_it_is_assigned(host, settings, graph):
    graph.ctl.user(ANN, ["INTUNE_A"])
    rows = [portal_row("LC-1", user=ANN), portal_row("LC-2", user="nobody@contoso.com"), portal_row("LC-3")]
    upload(settings, "device-uploads", "standard/f.csv", csv_bytes(rows))
    await _settle(host)
    store = host.runtime.store
    assert all(store.get_device(s).state == DeviceState.READY for s in ("LC-1", "LC-2", "LC-3"))
    assert store.get_device("LC-1").message == "Ready for user, but ann@contoso.com lacks SPE_E3"
    assert store.get_device("LC-2").message == "Ready for user, but user nobody@contoso.com not found in Entra ID"
    assert store.get_device("LC-3").message == "Ready for user"  # no assigned user: nothing to check
    # Once per user, and not again within the re-check interval (the later steps read nothing).
    assert _licence_calls(graph) == {"GET users.get 200": 1, "GET users.get 404": 1, "GET subscribedSkus.list 200": 1}

    # The JSON API (and so the portal and `registrar status --json`, which share device_view) shows it.
    (shown,) = list_devices(store, {"serial": "LC-1"}, "http://localhost")["value"]
    assert (shown["state"], shown["message"]) == ("Ready for user", "Ready for user, but ann@contoso.com lacks SPE_E3")

    graph.ctl.user(ANN, ["INTUNE_A", "SPE_E3"])  # an admin assigns the licence
    graph.ctl.reset_counters()
    await reconcile.main(LocalTimerRequest(), host.runtime)
    assert store.get_device("LC-1").message.startswith("Ready for user, but")  # checked under 6 hours ago
    assert _licence_calls(graph) == {}

    rt = host.runtime
    later = datetime.now(UTC) + timedelta(hours=6, minutes=1)
    run = await reconcile_fleet(rt.store, rt.graph, rt.directory, settings.profiles, now=later, licences=rt.licences)
    assert store.get_device("LC-1").message == "Ready for user"
    assert store.get_device("LC-1").state == DeviceState.READY
    assert store.get_device("LC-2").message.endswith("not found in Entra ID")  # still no such user
    assert run.licence_warnings == 1 and run.errors == []
    assert _licence_calls(graph) == {"GET users.get 200": 1, "GET users.get 404": 1, "GET subscribedSkus.list 200": 1}


async def test_a_profile_without_required_licences_reads_no_licences(host, settings, graph):
    graph.ctl.user(ANN, [])
    upload(settings, "device-uploads", "kiosk/f.csv", csv_bytes([portal_row("LC-K", user=ANN)]))
    await _settle(host)
    await reconcile.main(LocalTimerRequest(), host.runtime)
    device = host.runtime.store.get_device("LC-K")
    assert (device.state, device.message) == (DeviceState.READY, "Ready for user")
    assert _licence_calls(graph) == {}


async def test_a_refused_licence_read_is_reported_and_the_run_goes_on(host, settings, graph):
    graph.ctl.user(ANN, [])
    graph.ctl.configure(
        app_roles={
            "dev.autopilot-registrar-dev": [
                "DeviceManagementServiceConfig.ReadWrite.All",
                "GroupMember.ReadWrite.All",
                "Device.ReadWrite.All",
            ]
        }
    )
    upload(settings, "device-uploads", "standard/f.csv", csv_bytes([portal_row("LC-1", user=ANN)]))
    await _settle(host)
    run = await reconcile.main(LocalTimerRequest(), host.runtime)
    device = host.runtime.store.get_device("LC-1")
    assert (device.state, device.message) == (DeviceState.READY, "Ready for user")  # unchecked, not wrong
    assert any("licence check" in e and "403" in e and "LicenseAssignment.Read.All" in e for e in run.fleet.errors)
    graph.ctl.configure(app_roles={})  # granted after all: the next run checks
    await reconcile.main(LocalTimerRequest(), host.runtime)
    assert host.runtime.store.get_device("LC-1").message == "Ready for user, but ann@contoso.com lacks SPE_E3, INTUNE_A"


async def test_licences_are_checked_between_full_fleet_checks_too(host, settings, graph):
    graph.ctl.user(ANN, ["INTUNE_A"])
    upload(settings, "device-uploads", "standard/f.csv", csv_bytes([portal_row("LC-1", user=ANN)]))
    await _settle(host)
    rt = host.runtime
    rt.store.update_device(
        "LC-1", lambda d: (setattr(d, "licence_checked", ""), setattr(d, "message", "Ready for user"))
    )
    now = datetime.now(UTC)
    rt.store.put_meta("fleet", {"lastFullCheck": now.isoformat()})  # a full check just ran
    run = await reconcile_fleet(
        rt.store,
        rt.graph,
        rt.directory,
        settings.profiles,
        now=now,
        licences=rt.licences,
        full_check_every=timedelta(hours=1),
    )
    assert not run.full_check
    assert rt.store.get_device("LC-1").message == "Ready for user, but ann@contoso.com lacks SPE_E3"
