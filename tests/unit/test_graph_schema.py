"""The Graph emulator serves only what Microsoft's published v1.0 schema has (schema/v1_0.json, derived
from the CSDL by schema/derive.py), and beta only where confirmed."""

import re

from registrar.emulators.graph.router import GraphRouter
from registrar.emulators.graph.schema import v1_0

BETA_ONLY = {"autopilotSettings.sync", "autopilotSettings.get"}  # confirmed from the beta api-reference


def routes() -> list[tuple[str, str, str]]:
    router = GraphRouter.__new__(GraphRouter)
    router._routes = []
    GraphRouter.__init__(router, tenant=None, throttle=None, faults=None)  # builds the route table only
    return [(r.method, r.pattern.pattern, r.name) for r in router._routes]


def test_every_v1_route_of_the_emulator_is_in_the_published_schema():
    table = v1_0()
    assert "msgraph-metadata" in table["origin"]
    assert "windowsAutopilotSettings" in table["absent"]
    for _method, pattern, name in routes():
        if name in BETA_ONLY:
            continue
        segments = [s for s in re.sub(r"\(\?P<\w+>\[\^/\]\+\)", "{id}", pattern).replace("\\", "").split("/") if s]
        segments = [s.rstrip("?") for s in segments if s not in ("?",)]
        root = segments[0]
        assert root in table["roots"], (name, root)
        if root == "users" and len(segments) > 2:  # /users/{id}/<navigation>
            assert segments[2] in table["navigations"]["user"], (name, segments[2])
        if root == "deviceManagement":
            assert segments[1] in table["navigations"]["deviceManagement"], (name, segments[1])
            actions = {a for binding in table["boundActions"].values() for a in binding}
            last = segments[-1]
            if last not in ("{id}", segments[1]):
                assert last in actions, (name, last)


def test_the_types_the_product_writes_have_the_properties_it_sends():
    imported = v1_0()["types"]["importedWindowsAutopilotDeviceIdentity"]
    for name in ("serialNumber", "hardwareIdentifier", "groupTag", "productKey", "assignedUserPrincipalName"):
        assert name in imported
    assert imported["hardwareIdentifier"] == "Edm.Binary"
    update = v1_0()["boundActions"]["windowsAutopilotDeviceIdentity"]["updateDeviceProperties"]
    assert "groupTag" in update


def test_the_licence_check_types_are_in_the_schema():
    table = v1_0()
    assert table["roots"]["users"] == "user" and table["roots"]["subscribedSkus"] == "subscribedSku"
    assert table["navigations"]["user"]["licenseDetails"] == "Collection(graph.licenseDetails)"
    assert set(table["types"]["licenseDetails"]) == {"id", "skuId", "skuPartNumber", "servicePlans"}
    assert table["types"]["user"]["assignedLicenses"] == "Collection(graph.assignedLicense)"
    assert {"skuId", "skuPartNumber"} <= set(table["types"]["subscribedSku"])
