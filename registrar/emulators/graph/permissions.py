"""Which application permissions each emulated route needs, from Microsoft Graph's api-reference
permission tables (least privileged application permission; autopilot-graph-facts.md, "Entra ID side").
A token without them gets 403 ``Authorization_RequestDenied``, as Graph answers.

Adding a *device* to a group needs ``Device.ReadWrite.All`` besides ``GroupMember.ReadWrite.All``
(api-reference ``group-post-members``, application column): the emulator checks both. A higher
permission of the same family satisfies a lower one (``Device.ReadWrite.All`` covers ``Device.Read.All``),
as Graph's permission model does.

The licence check reads a user's ``assignedLicenses`` (``user-get``: User.Read.All, least privileged
application permission) and maps SKU ids to part numbers with ``GET /subscribedSkus`` (``subscribedsku-list``:
LicenseAssignment.Read.All). ``GET /users/{id}/licenseDetails`` would give part numbers directly, but its
api-reference table (``user-list-licensedetails``) says Application: *Not supported*: the emulator refuses it
to every application token (:data:`APP_ONLY_UNSUPPORTED`), whatever its roles.
"""

from __future__ import annotations

INTUNE_RW = "DeviceManagementServiceConfig.ReadWrite.All"

ROUTE_PERMISSIONS: dict[str, frozenset[str]] = {
    "importedIdentities.create": frozenset({INTUNE_RW}),
    "importedIdentities.import": frozenset({INTUNE_RW}),
    "importedIdentities.list": frozenset({INTUNE_RW}),
    "importedIdentities.get": frozenset({INTUNE_RW}),
    "importedIdentities.delete": frozenset({INTUNE_RW}),
    "autopilotDevices.list": frozenset({INTUNE_RW}),
    "autopilotDevices.get": frozenset({INTUNE_RW}),
    "autopilotDevices.delete": frozenset({INTUNE_RW}),
    "autopilotDevices.updateDeviceProperties": frozenset({INTUNE_RW}),
    "autopilotSettings.sync": frozenset({INTUNE_RW}),
    "autopilotSettings.get": frozenset({INTUNE_RW}),
    "devices.list": frozenset({"Device.Read.All"}),
    "devices.get": frozenset({"Device.Read.All"}),
    "groups.create": frozenset({"Group.Create"}),
    "groups.get": frozenset({"GroupMember.Read.All"}),
    "groups.members.list": frozenset({"GroupMember.Read.All"}),
    "groups.members.add": frozenset({"GroupMember.ReadWrite.All", "Device.ReadWrite.All"}),
    # PATCH /groups/{id} with members@odata.bind: the same table (group-post-members) as adding one.
    "groups.update.members": frozenset({"GroupMember.ReadWrite.All", "Device.ReadWrite.All"}),
    "groups.members.remove": frozenset({"GroupMember.ReadWrite.All"}),
    "users.get": frozenset({"User.Read.All"}),
    "subscribedSkus.list": frozenset({"LicenseAssignment.Read.All"}),
}

# Routes whose api-reference permission table says Application: "Not supported": only a delegated token (a
# signed-in user; the emulator's ``delegated_tokens``) may call them.
APP_ONLY_UNSUPPORTED: frozenset[str] = frozenset({"users.licenseDetails.list"})

# A granted permission also satisfies these weaker ones.
IMPLIES: dict[str, frozenset[str]] = {
    "Device.ReadWrite.All": frozenset({"Device.Read.All"}),
    "GroupMember.ReadWrite.All": frozenset({"GroupMember.Read.All"}),
    "User.ReadWrite.All": frozenset({"User.Read.All"}),
    "Group.ReadWrite.All": frozenset({"Group.Read.All", "GroupMember.Read.All", "Group.Create"}),
    INTUNE_RW: frozenset({"DeviceManagementServiceConfig.Read.All"}),
}

# What the product is granted in Azure (infra/grant-graph-permissions.sh): the emulator's default roles
# for every app, so a local run fails exactly where Azure would. tests/unit/test_graph_permissions.py keeps
# this list, the grant script and the routes the product calls in step.
PRODUCT_GRANTS: frozenset[str] = frozenset(
    {INTUNE_RW, "GroupMember.ReadWrite.All", "Device.ReadWrite.All", "User.Read.All", "LicenseAssignment.Read.All"}
)


def effective(granted: frozenset[str] | set[str]) -> set[str]:
    out = set(granted)
    for permission in granted:
        out |= IMPLIES.get(permission, frozenset())
    return out


def missing(route_name: str, granted: frozenset[str] | set[str]) -> list[str]:
    """The permissions this route needs that ``granted`` lacks ([] when allowed). Unknown routes need none."""
    return sorted(ROUTE_PERMISSIONS.get(route_name, frozenset()) - effective(granted))
