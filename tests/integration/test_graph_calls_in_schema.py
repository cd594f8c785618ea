"""Every Graph call a whole product run makes exists in Microsoft's published v1.0 schema (the derived
table, schema/v1_0.json), and the only beta call is the confirmed one (sync). The check walks the
schema table itself, not the emulator's route table: a route the emulator wrongly served would still fail."""

from __future__ import annotations

import copy
import json

import pytest

from functions import reconcile
from registrar.emulators.graph.schema import v1_0
from registrar.localhost.host import LocalTimerRequest
from shared.config import load_settings
from tests.helpers import csv_bytes, portal_row
from tests.integration.conftest import KIOSK_GROUP, PROFILES, upload

pytestmark = [pytest.mark.anyio, pytest.mark.integration]

# Confirmed from the beta api-reference (intune-enrollment-windowsautopilotsettings-sync).
CONFIRMED_BETA = {("POST", "/deviceManagement/windowsAutopilotSettings/sync")}


def in_v1_schema(method: str, path: str) -> str | None:
    """Why ``path`` is not a v1.0 resource path in the published schema, or None when it is."""
    table = v1_0()
    if path == "/$batch":
        return None if method == "POST" else "$batch is POST only"
    segments = path.strip("/").split("/")
    root, rest = segments[0], segments[1:]
    if root not in table["roots"]:
        return f"no entity set or singleton {root!r}"
    if root == "deviceManagement":
        if not rest or rest[0] not in table["navigations"]["deviceManagement"]:
            return f"deviceManagement has no navigation {rest[:1]}"
        entity = table["navigations"]["deviceManagement"][rest[0]].removeprefix("Collection(graph.").rstrip(")")
        tail = rest[1:]
        if not tail:
            return None
        if tail == ["import"]:
            actions = table["boundActions"].get(f"Collection({entity})", {})
            return None if "import" in actions and method == "POST" else f"no collection action import on {entity}"
        if tail[0] != "{id}":
            return f"{rest[0]}/{tail[0]} is not a key"
        if len(tail) == 1:
            return None
        if len(tail) == 2 and method == "POST" and tail[1] in table["boundActions"].get(entity, {}):
            return None
        return f"no bound action {tail[1:]} on {entity}"
    if root in ("devices", "directoryObjects", "subscribedSkus"):
        return None if len(rest) <= 1 and all(s == "{id}" for s in rest) else f"{path}: not a key read"
    if root == "users":
        if not rest:
            return None
        if rest[0] != "{id}":
            return f"users/{rest[0]} is not a key"
        if len(rest) == 1:
            return None
        if len(rest) == 2 and method == "GET" and rest[1] in table["navigations"].get(table["roots"][root], {}):
            return None
        return f"user has no navigation {'/'.join(rest[1:])!r} in the schema table"
    if root == "groups":
        if not rest:
            return None
        if rest[0] != "{id}":
            return f"groups/{rest[0]} is not a key"
        members = rest[1:]
        if not members:
            return None
        if members[0] not in table["navigations"]["group"]:
            return f"group has no navigation {members[0]!r}"
        if members[1:] in ([], ["$ref"], ["{id}", "$ref"]):
            return None
        return f"groups/{{id}}/{'/'.join(members)}: not a reference path"
    return f"{root}: not checked"


def test_the_checker_refuses_what_the_schema_lacks():
    assert in_v1_schema("POST", "/deviceManagement/windowsAutopilotSettings/sync")
    assert in_v1_schema("POST", "/deviceManagement/windowsAutopilotDeviceIdentities/{id}/noSuchAction")
    assert in_v1_schema("GET", "/groups/{id}/owners")
    assert in_v1_schema("POST", "/deviceManagement/importedWindowsAutopilotDeviceIdentities/{id}/import")
    assert in_v1_schema("POST", "/deviceManagement/importedWindowsAutopilotDeviceIdentities/import") is None
    assert in_v1_schema("GET", "/users/{id}/licenseDetails") is None  # user's navigation in the table
    assert in_v1_schema("GET", "/users/{id}") is None and in_v1_schema("GET", "/subscribedSkus") is None
    assert in_v1_schema("GET", "/users/{id}/licenceDetails")
    assert in_v1_schema("GET", "/users/{id}/licenseDetails/{id}/extra")
    assert in_v1_schema("GET", "/users/licenseDetails")


@pytest.fixture
def settings(env):
    """The standard profile requires licences, so a whole run includes the licence check."""
    profiles = copy.deepcopy(PROFILES)
    profiles["profiles"]["standard"]["requiredLicenses"] = ["SPE_E3"]
    return load_settings({**env, "REGISTRAR_PROFILES": json.dumps(profiles)})


async def test_every_graph_call_of_a_whole_run_is_in_the_published_schema(host, settings, graph):
    graph.ctl.seed(devices=[{"serial": "SC-OLD", "manufacturer": "Contoso", "model": "Laptop"}])
    graph.ctl.user("ann@contoso.com", ["INTUNE_A"])
    rows = [portal_row(f"SC-{n}", user="ann@contoso.com" if n == 0 else "") for n in range(3)] + [portal_row("SC-OLD")]
    upload(settings, "device-uploads", "standard/a.csv", csv_bytes(rows))
    for _ in range(4):
        await host.step()  # ingest, register, poll imports, delete them, list devices, sync, membership
    record = next(d for d in graph.ctl.state()["devices"] if d["serialNumber"] == "SC-0")
    await host.runtime.directory.update_group_tag(record["id"], "Tampered")
    graph.ctl.change_membership(KIOSK_GROUP, "SC-1", "add")
    graph.ctl.advance(700)  # past the sync cool-down
    await reconcile.main(LocalTimerRequest(), host.runtime)  # repairs: tag, membership add and remove

    calls = graph.ctl.paths()
    called = {(c["method"], c["path"]) for c in calls}
    # The run did exercise each kind of call (or this test would prove nothing).
    assert ("POST", "/deviceManagement/importedWindowsAutopilotDeviceIdentities/import") in called
    assert ("POST", "/deviceManagement/windowsAutopilotDeviceIdentities/{id}/updateDeviceProperties") in called
    assert ("POST", "/$batch") in called
    assert ("GET", "/users/{id}") in called and ("GET", "/subscribedSkus") in called  # the licence check
    assert ("DELETE", "/groups/{id}/members/{id}/$ref") in called and ("PATCH", "/groups/{id}") in called
    problems = []
    for call in calls:
        key = (call["method"], call["path"])
        if call["version"] == "beta":
            if key not in CONFIRMED_BETA:
                problems.append(f"beta call not confirmed: {key}")
        elif call["version"] != "v1.0":
            problems.append(f"unknown version {call['version']}: {key}")
        else:
            why = in_v1_schema(*key)
            if why:
                problems.append(f"{key}: {why}")
    assert problems == []
    assert ("beta", "POST", "/deviceManagement/windowsAutopilotSettings/sync") in {
        (c["version"], c["method"], c["path"]) for c in calls
    }
