"""The application permissions: what the emulator demands per route (Graph's api-reference tables), what
the product's calls need, and what the infrastructure grants must be the same set."""

import re
from pathlib import Path

from registrar.emulators.graph.permissions import (
    APP_ONLY_UNSUPPORTED,
    PRODUCT_GRANTS,
    ROUTE_PERMISSIONS,
    effective,
    missing,
)

ROOT = Path(__file__).resolve().parents[2]
# Every route the product calls (shared/graph/*): a new call must be added here and so be checked.
PRODUCT_ROUTES = {
    "importedIdentities.import",
    "importedIdentities.list",
    "importedIdentities.delete",
    "autopilotDevices.list",
    "autopilotDevices.updateDeviceProperties",
    "autopilotSettings.sync",
    "devices.list",
    "groups.get",
    "groups.members.list",
    "groups.members.add",
    "groups.members.remove",
    "users.get",
    "subscribedSkus.list",
}


def granted_by_script() -> set[str]:
    script = (ROOT / "infra" / "grant-graph-permissions.sh").read_text()
    (loop,) = re.findall(r"^for permission in (.+); do$", script, re.MULTILINE)
    return set(loop.split())


def test_the_infrastructure_grants_exactly_what_the_product_needs():
    assert granted_by_script() == set(PRODUCT_GRANTS)
    for route in PRODUCT_ROUTES:
        assert route in ROUTE_PERMISSIONS, route
        assert not missing(route, PRODUCT_GRANTS), f"{route} needs {missing(route, PRODUCT_GRANTS)}"
    needed = set().union(*(ROUTE_PERMISSIONS[r] for r in PRODUCT_ROUTES))
    for permission in PRODUCT_GRANTS:  # least privilege: nothing granted that no call needs
        assert permission in needed or effective({permission}) & needed, permission


def test_adding_a_device_to_a_group_needs_device_readwrite_as_well():
    assert missing("groups.members.add", {"GroupMember.ReadWrite.All", "Device.Read.All"}) == ["Device.ReadWrite.All"]
    assert missing("groups.members.remove", {"GroupMember.ReadWrite.All"}) == []
    assert missing("devices.list", {"Device.ReadWrite.All"}) == []  # the higher permission covers reads


def test_the_product_calls_no_route_that_application_permissions_cannot_reach():
    """user-list-licensedetails: Application "Not supported". The licence check reads assignedLicenses
    (User.Read.All) and subscribedSkus (LicenseAssignment.Read.All) instead."""
    assert "users.licenseDetails.list" in APP_ONLY_UNSUPPORTED
    assert not PRODUCT_ROUTES & APP_ONLY_UNSUPPORTED
    assert ROUTE_PERMISSIONS["users.get"] == {"User.Read.All"}
    assert ROUTE_PERMISSIONS["subscribedSkus.list"] == {"LicenseAssignment.Read.All"}
