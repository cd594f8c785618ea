"""The emulated tenant: Autopilot imports and devices, Entra devices and groups, on an emulated clock.

Time-dependent work (an import finishing, an Entra object appearing) happens lazily in :meth:`advance`,
called before every request, so advancing the clock through the control API has the same effect as
waiting.
"""

from __future__ import annotations

import base64
import heapq
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.intake import hwhash
from shared.intake.model import serial_key

from .config import EmulatorConfig

NEVER = "0001-01-01T00:00:00Z"
ERROR_ALREADY_ASSIGNED = (806, "ZtdDeviceAlreadyAssigned")
ERROR_OTHER_TENANT = (808, "ZtdDeviceAssignedToOtherTenant")
# Microsoft documents these by name only; the emulator reports code 0 with the name.
ERROR_DUPLICATED = (0, "ZtdDeviceDuplicated")
ERROR_INVALID_HASH = (0, "InvalidZtdHardwareHash")


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Clock:
    """Wall time plus an offset that the control API can advance."""

    def __init__(self) -> None:
        self._offset = 0.0
        self._monotonic_base = 0.0  # moves monotonic time only: a restored tenant continues its clock

    def now(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self._offset)

    def monotonic(self) -> float:
        return time.monotonic() + self._offset + self._monotonic_base

    def advance(self, seconds: float) -> None:
        self._offset += seconds

    def continue_from(self, monotonic: float) -> None:
        """Make ``monotonic()`` read ``monotonic`` now (after a restart, in a new process)."""
        self._monotonic_base += monotonic - self.monotonic()


@dataclass(slots=True)
class ImportedIdentity:
    id: str
    serial: str
    hardware_identifier: str | None
    group_tag: str
    product_key: str
    assigned_user: str
    import_id: str
    ready_at: float
    hash_info: hwhash.HardwareHash | None
    hash_error: str | None
    duplicate_in_import: bool = False
    status: str = "unknown"
    registration_id: str = ""
    error_code: int = 0
    error_name: str = ""

    def as_graph(self) -> dict[str, Any]:
        return {
            "@odata.type": "#microsoft.graph.importedWindowsAutopilotDeviceIdentity",
            "id": self.id,
            "groupTag": self.group_tag,
            "serialNumber": self.serial,
            "productKey": self.product_key,
            "importId": self.import_id,
            "hardwareIdentifier": self.hardware_identifier,
            "assignedUserPrincipalName": self.assigned_user,
            "state": {
                "@odata.type": "microsoft.graph.importedWindowsAutopilotDeviceIdentityState",
                "deviceImportStatus": self.status,
                "deviceRegistrationId": self.registration_id,
                "deviceErrorCode": self.error_code,
                "deviceErrorName": self.error_name,
            },
        }


@dataclass(slots=True)
class AutopilotDevice:
    id: str
    serial: str
    manufacturer: str
    model: str
    group_tag: str
    product_key: str
    user: str
    aad_device_id: str
    hash_digest: bytes | None
    entra_visible_at: float
    display_name: str = ""
    addressable_user_name: str = ""
    enrollment_state: str = "notContacted"
    last_contacted: str = NEVER
    profile_status: str = "notAssigned"
    listed_at: float = 0.0  # Graph lists (and gets) the record from this time on
    pending_properties: dict[str, str] | None = None  # updateDeviceProperties not yet visible in reads
    pending_due: float = 0.0

    def as_graph(self, beta: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "@odata.type": "#microsoft.graph.windowsAutopilotDeviceIdentity",
            "id": self.id,
            "groupTag": self.group_tag,
            "purchaseOrderIdentifier": "",
            "serialNumber": self.serial,
            "productKey": self.product_key,
            "manufacturer": self.manufacturer,
            "model": self.model,
            "enrollmentState": self.enrollment_state,
            "lastContactedDateTime": self.last_contacted,
            "addressableUserName": self.addressable_user_name,
            "userPrincipalName": self.user,
            "resourceName": "",
            "skuNumber": "",
            "systemFamily": "",
            "azureActiveDirectoryDeviceId": self.aad_device_id,
            "managedDeviceId": "00000000-0000-0000-0000-000000000000",
            "displayName": self.display_name,
        }
        if beta:
            body["azureAdDeviceId"] = self.aad_device_id
            body["deploymentProfileAssignmentStatus"] = self.profile_status
        return body


@dataclass(slots=True)
class EntraDevice:
    id: str
    device_id: str
    display_name: str
    physical_ids: list[str]

    def as_graph(self) -> dict[str, Any]:
        return {
            "@odata.type": "#microsoft.graph.device",
            "id": self.id,
            "deviceId": self.device_id,
            "displayName": self.display_name,
            "physicalIds": list(self.physical_ids),
            "operatingSystem": "Windows",
            "accountEnabled": True,
            "trustType": None,
        }


@dataclass(slots=True)
class Group:
    id: str
    display_name: str
    membership_rule: str | None = None
    members: set[str] = field(default_factory=set)

    @property
    def dynamic(self) -> bool:
        return bool(self.membership_rule)

    def as_graph(self) -> dict[str, Any]:
        return {
            "@odata.type": "#microsoft.graph.group",
            "id": self.id,
            "displayName": self.display_name,
            "groupTypes": ["DynamicMembership"] if self.dynamic else [],
            "membershipRule": self.membership_rule,
            "membershipRuleProcessingState": "On" if self.dynamic else None,
            "securityEnabled": True,
            "mailEnabled": False,
        }


# The properties GET /users/{id} returns without $select (api-reference user-get, "Optional query parameters").
USER_DEFAULT_PROPERTIES = (
    "businessPhones",
    "displayName",
    "givenName",
    "id",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
)
_SKU_NAMESPACE = uuid.UUID("6f0d3c1e-5b2a-4c7e-9d41-2a8e0c5f7b13")


def sku_id(part_number: str) -> str:
    """A made-up but stable ``skuId`` for a part number (real tenants have Microsoft's fixed ids)."""
    return str(uuid.uuid5(_SKU_NAMESPACE, part_number.upper()))


@dataclass(slots=True)
class User:
    id: str
    user_principal_name: str
    display_name: str
    sku_ids: list[str] = field(default_factory=list)  # assignedLicenses, direct or through a group alike

    def as_graph(self) -> dict[str, Any]:
        """Every property the emulator knows; the router keeps the default set or the ``$select``-ed ones."""
        return {
            "@odata.type": "#microsoft.graph.user",
            "id": self.id,
            "userPrincipalName": self.user_principal_name,
            "displayName": self.display_name,
            "mail": self.user_principal_name,
            "businessPhones": [],
            "givenName": None,
            "surname": None,
            "jobTitle": None,
            "mobilePhone": None,
            "officeLocation": None,
            "preferredLanguage": None,
            "accountEnabled": True,
            "assignedLicenses": [{"disabledPlans": [], "skuId": s} for s in self.sku_ids],
        }


_RULE_TERM = re.compile(r'-any\s*\(\s*_\s*-(eq|contains)\s*"([^"]*)"\s*\)|-contains\s*"([^"]*)"', re.IGNORECASE)


def rule_matches(rule: str, physical_ids: list[str]) -> bool:
    """The ``device.devicePhysicalIds`` forms Autopilot groups use; terms are OR-ed."""
    for match in _RULE_TERM.finditer(rule):
        operator, value, contains_value = match.groups()
        if contains_value is not None or (operator or "").lower() == "contains":
            needle = (contains_value if contains_value is not None else value).casefold()
            if any(needle in pid.casefold() for pid in physical_ids):
                return True
        elif any(pid.casefold() == value.casefold() for pid in physical_ids):
            return True
    return False


class GraphError(Exception):
    """Raised by tenant operations; the router turns it into Graph's error JSON."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}


class Tenant:
    def __init__(self, config: EmulatorConfig, clock: Clock | None = None) -> None:
        self.config = config
        self.clock = clock or Clock()
        self.reset()

    def reset(self) -> None:
        self.imports: dict[str, ImportedIdentity] = {}
        self.imported_serials: dict[str, int] = {}  # import items per serial, ever: "imported exactly once"
        self.devices: dict[str, AutopilotDevice] = {}
        self.entra: dict[str, EntraDevice] = {}  # by object id, once visible
        self.groups: dict[str, Group] = {}
        self.other_tenant_serials: set[str] = set()
        self.users: dict[str, User] = {}  # by object id
        self.skus: dict[str, str] = {}  # subscribed SKUs: skuId -> skuPartNumber
        self.last_sync_at: float | None = None
        self.last_sync_time = NEVER
        # Work waiting for the clock, as heaps of (due, sequence, id): a request costs O(due work), not O(tenant).
        self._due_imports: list[tuple[float, int, str]] = []
        self._due_entra: list[tuple[float, int, str]] = []
        self._due_properties: list[tuple[float, int, str]] = []
        self._sequence = 0
        self._entra_by_device_id: dict[str, str] = {}
        self._devices_by_serial: dict[str, str] = {}
        self._devices_by_digest: dict[bytes, str] = {}

    def _schedule(self, heap: list[tuple[float, int, str]], due: float, item_id: str) -> None:
        self._sequence += 1
        heapq.heappush(heap, (due, self._sequence, item_id))

    # -- time ---------------------------------------------------------------------------------------
    def advance(self) -> None:
        now = self.clock.monotonic()
        while self._due_imports and self._due_imports[0][0] <= now:
            record = self.imports.get(heapq.heappop(self._due_imports)[2])
            if record is not None and record.status == "unknown":
                self._finish_import(record)
        while self._due_entra and self._due_entra[0][0] <= now:
            device = self.devices.get(heapq.heappop(self._due_entra)[2])
            if device is not None and not self._entra_for(device):
                self._create_entra(device)
        while self._due_properties and self._due_properties[0][0] <= now:
            device = self.devices.get(heapq.heappop(self._due_properties)[2])
            if device is not None and device.pending_properties is not None and device.pending_due <= now:
                self._apply_properties(device, device.pending_properties)
                device.pending_properties = None

    def _finish_import(self, record: ImportedIdentity) -> None:
        info = record.hash_info
        if info is None or not info.serial or not info.manufacturer or record.hash_error:
            self._fail(record, ERROR_INVALID_HASH)
        elif record.duplicate_in_import:
            self._fail(record, ERROR_DUPLICATED)
        elif (
            serial_key(info.serial) in self.other_tenant_serials
            or serial_key(record.serial) in self.other_tenant_serials
        ):
            self._fail(record, ERROR_OTHER_TENANT)
        elif self._registered(info, record.serial):
            self._fail(record, ERROR_ALREADY_ASSIGNED)
        else:
            device = AutopilotDevice(
                id=str(uuid.uuid4()),
                serial=info.serial,
                manufacturer=info.manufacturer or "",
                model=info.model or "",
                group_tag=record.group_tag,
                product_key=record.product_key,
                user=record.assigned_user,
                aad_device_id=str(uuid.uuid4()),
                hash_digest=info.digest,
                entra_visible_at=self.clock.monotonic() + self.config.entra_delay_seconds,
                listed_at=record.ready_at + self.config.autopilot_listing_delay_seconds,
            )
            self._add_device(device)
            record.status = "complete"
            record.registration_id = device.id

    def _add_device(self, device: AutopilotDevice) -> None:
        self.devices[device.id] = device
        self._devices_by_serial[serial_key(device.serial)] = device.id
        if device.hash_digest:
            self._devices_by_digest[device.hash_digest] = device.id
        self._schedule(self._due_entra, device.entra_visible_at, device.id)

    def _fail(self, record: ImportedIdentity, error: tuple[int, str]) -> None:
        record.status = "error"
        record.error_code, record.error_name = error

    def _registered(self, info: hwhash.HardwareHash, serial: str) -> bool:
        return (
            info.digest in self._devices_by_digest
            or serial_key(info.serial or "") in self._devices_by_serial
            or serial_key(serial) in self._devices_by_serial
        )

    def _entra_for(self, device: AutopilotDevice) -> EntraDevice | None:
        object_id = self._entra_by_device_id.get(device.aad_device_id)
        return self.entra.get(object_id) if object_id else None

    def _create_entra(self, device: AutopilotDevice) -> None:
        entra = EntraDevice(str(uuid.uuid4()), device.aad_device_id, device.serial, self._physical_ids(device))
        self.entra[entra.id] = entra
        self._entra_by_device_id[device.aad_device_id] = entra.id

    @staticmethod
    def _physical_ids(device: AutopilotDevice) -> list[str]:
        ids = [f"[ZTDId]:{device.id}", f"[HWID]:h:{(device.hash_digest or b'').hex()[:32]}"]
        if device.group_tag:
            ids.append(f"[OrderId]:{device.group_tag}")
        return ids

    # -- imported identities --------------------------------------------------------------------------
    def import_identities(self, items: list[dict[str, Any]]) -> list[ImportedIdentity]:
        """Create one or many import records; hashes twice in one call make the later ones duplicates."""
        prepared = [self._prepare(item) for item in items]  # validate all before storing any
        seen: set[bytes] = set()
        import_id = str(uuid.uuid4())
        ready = self.clock.monotonic() + self.config.import_processing_seconds
        created = []
        for item, (binary_text, info, error) in zip(items, prepared):
            record = ImportedIdentity(
                id=str(uuid.uuid4()),
                serial=str(item.get("serialNumber") or ""),
                hardware_identifier=binary_text,
                group_tag=str(item.get("groupTag") or ""),
                product_key=str(item.get("productKey") or ""),
                assigned_user=str(item.get("assignedUserPrincipalName") or ""),
                import_id=import_id if len(items) > 1 else str(item.get("importId") or import_id),
                ready_at=ready,
                hash_info=info,
                hash_error=error,
            )
            if info is not None:
                record.duplicate_in_import = info.digest in seen
                seen.add(info.digest)
            self.imports[record.id] = record
            self.imported_serials[record.serial] = self.imported_serials.get(record.serial, 0) + 1
            self._schedule(self._due_imports, ready, record.id)
            created.append(record)
        return created

    @staticmethod
    def _prepare(item: dict[str, Any]) -> tuple[str | None, hwhash.HardwareHash | None, str | None]:
        text = item.get("hardwareIdentifier")
        if text is None:
            return None, None, "missing"
        if not isinstance(text, str) or len(text) % 4 or not re.fullmatch(r"[A-Za-z0-9+/]*={0,2}", text):
            shown = str(text)[:12] + "..." if len(str(text)) > 12 else str(text)
            raise GraphError(
                400,
                "BadRequest",
                f"Cannot convert the literal '{shown}' to the expected type 'Edm.Binary'.",
            )
        try:
            return text, hwhash.decode(text), None
        except hwhash.HardwareHashError as error:
            return text, None, error.code

    def get_import(self, identity_id: str) -> ImportedIdentity:
        record = self.imports.get(identity_id)
        if record is None:
            raise GraphError(404, "ResourceNotFound", f"importedWindowsAutopilotDeviceIdentity {identity_id} not found")
        return record

    def delete_import(self, identity_id: str) -> None:
        self.get_import(identity_id)
        del self.imports[identity_id]

    # -- Autopilot devices ----------------------------------------------------------------------------
    def listed(self, device: AutopilotDevice) -> bool:
        """Graph lists and gets a record only once it is visible (``autopilot_listing_delay_seconds``)."""
        return device.listed_at <= self.clock.monotonic()

    def get_device(self, device_id: str) -> AutopilotDevice:
        device = self.devices.get(device_id)
        if device is None or not self.listed(device):
            raise GraphError(404, "ResourceNotFound", f"windowsAutopilotDeviceIdentity {device_id} not found")
        return device

    def delete_device(self, device_id: str) -> None:
        device = self.get_device(device_id)
        del self.devices[device_id]
        self._devices_by_serial.pop(serial_key(device.serial), None)
        if device.hash_digest:
            self._devices_by_digest.pop(device.hash_digest, None)
        entra = self._entra_for(device)
        if entra:
            entra.physical_ids = [p for p in entra.physical_ids if not p.startswith(("[ZTDId]", "[OrderId]"))]

    def update_device_properties(self, device_id: str, body: dict[str, Any]) -> None:
        device = self.get_device(device_id)
        allowed = {"groupTag", "userPrincipalName", "addressableUserName", "displayName"}
        unknown = set(body) - allowed - {"@odata.type"}
        if unknown:
            raise GraphError(400, "BadRequest", f"Unknown properties for updateDeviceProperties: {sorted(unknown)}")
        changes = {key: str(body[key] or "") for key in allowed if key in body}
        delay = self.config.property_read_delay_seconds
        if delay <= 0:
            self._apply_properties(device, changes)
            return
        # Accepted (204) now, visible in reads later: a read in between shows the old values.
        device.pending_properties = {**(device.pending_properties or {}), **changes}
        device.pending_due = self.clock.monotonic() + delay
        self._schedule(self._due_properties, device.pending_due, device.id)

    def _apply_properties(self, device: AutopilotDevice, changes: dict[str, str]) -> None:
        if "groupTag" in changes:
            device.group_tag = changes["groupTag"]
            entra = self._entra_for(device)
            if entra:
                entra.physical_ids = [p for p in entra.physical_ids if not p.startswith("[OrderId]:")]
                if device.group_tag:
                    entra.physical_ids.append(f"[OrderId]:{device.group_tag}")
        if "userPrincipalName" in changes:
            device.user = changes["userPrincipalName"]
        if "addressableUserName" in changes:
            device.addressable_user_name = changes["addressableUserName"]
        if "displayName" in changes:
            device.display_name = changes["displayName"]

    def sync(self) -> None:
        now = self.clock.monotonic()
        if self.last_sync_at is not None:
            elapsed = now - self.last_sync_at
            if elapsed < self.config.sync_duration_seconds:
                raise GraphError(409, "Conflict", "An Autopilot sync is already in progress.")
            if elapsed < self.config.sync_cooldown_seconds:
                retry = int(self.config.sync_cooldown_seconds - elapsed) + 1
                raise GraphError(
                    429,
                    "TooManyRequests",
                    "Autopilot sync was requested less than 10 minutes after the previous one.",
                    {"Retry-After": str(retry)},
                )
        self.last_sync_at = now
        self.last_sync_time = iso(self.clock.now())

    # -- Entra ----------------------------------------------------------------------------------------
    def get_entra(self, object_id: str) -> EntraDevice:
        entra = self.entra.get(object_id)
        if entra is None:
            raise GraphError(404, "Request_ResourceNotFound", f"Resource '{object_id}' does not exist.")
        return entra

    def create_group(self, body: dict[str, Any]) -> Group:
        name = body.get("displayName")
        if not name:
            raise GraphError(
                400, "Request_BadRequest", "A value is required for property 'displayName' of resource 'Group'."
            )
        types = body.get("groupTypes") or []
        rule = body.get("membershipRule") if "DynamicMembership" in types else None
        if "DynamicMembership" in types and not rule:
            raise GraphError(400, "Request_BadRequest", "A dynamic group needs a membershipRule.")
        group = Group(str(body.get("id") or uuid.uuid4()), str(name), rule)
        self.groups[group.id] = group
        return group

    def get_group(self, group_id: str) -> Group:
        group = self.groups.get(group_id)
        if group is None:
            raise GraphError(404, "Request_ResourceNotFound", f"Resource '{group_id}' does not exist.")
        return group

    def members(self, group: Group) -> list[EntraDevice]:
        if group.dynamic:
            return [e for e in self.entra.values() if rule_matches(group.membership_rule or "", e.physical_ids)]
        return [self.entra[m] for m in sorted(group.members) if m in self.entra]

    def add_member(self, group_id: str, object_id: str) -> None:
        group = self.get_group(group_id)
        if group.dynamic:
            raise GraphError(
                400, "Request_BadRequest", "Insufficient privileges: members of a dynamic group cannot be changed."
            )
        if object_id not in self.entra:
            raise GraphError(404, "Request_ResourceNotFound", f"Resource '{object_id}' does not exist.")
        if object_id in group.members:
            raise GraphError(
                400,
                "Request_BadRequest",
                "One or more added object references already exist for the following modified properties: 'members'.",
            )
        group.members.add(object_id)

    def add_members(self, group_id: str, object_ids: list[str]) -> None:
        """Several at once, all or nothing: every reference is checked before any is added."""
        group = self.get_group(group_id)
        if group.dynamic:
            raise GraphError(
                400, "Request_BadRequest", "Insufficient privileges: members of a dynamic group cannot be changed."
            )
        for object_id in object_ids:
            if object_id not in self.entra:
                raise GraphError(
                    404,
                    "Request_ResourceNotFound",
                    f"Resource '{object_id}' does not exist or one of its queried reference-property objects are "
                    "not present.",
                )
        if len(set(object_ids)) != len(object_ids) or any(o in group.members for o in object_ids):
            raise GraphError(
                400,
                "Request_BadRequest",
                "One or more added object references already exist for the following modified properties: 'members'.",
            )
        group.members.update(object_ids)

    def remove_member(self, group_id: str, object_id: str) -> None:
        group = self.get_group(group_id)
        if group.dynamic:
            raise GraphError(
                400, "Request_BadRequest", "Insufficient privileges: members of a dynamic group cannot be changed."
            )
        if object_id not in group.members:
            if self.config.remove_nonmember_status == 400:
                raise GraphError(
                    400,
                    "Request_BadRequest",
                    "One or more removed object references do not exist for the following modified properties: "
                    "'members'.",
                )
            raise GraphError(
                404,
                "Request_ResourceNotFound",
                f"Resource '{object_id}' does not exist or one of its queried reference-property objects are not "
                "present.",
            )
        group.members.discard(object_id)

    # -- users and licences -----------------------------------------------------------------------------------
    def get_user(self, key: str) -> User:
        """By object id or userPrincipalName (case-insensitive), as ``/users/{id | userPrincipalName}``."""
        if key.startswith("$"):
            # api-reference user-get: a UPN that begins with '$' in the path "fails with a 400 Bad Request"
            # (it must be addressed as /users('$x@y.com')).
            raise GraphError(400, "BadRequest", f"Resource not found for the segment '{key}'.")
        user = self.users.get(key.lower()) or next(
            (u for u in self.users.values() if u.user_principal_name.casefold() == key.casefold()), None
        )
        if user is None:
            raise GraphError(
                404,
                "Request_ResourceNotFound",
                f"Resource '{key}' does not exist or one of its queried reference-property objects are not present.",
            )
        return user

    def license_details(self, user: User) -> list[dict[str, Any]]:
        """The user's licenseDetails (api-reference user-list-licensedetails): direct and group licences alike."""
        return [
            {
                "@odata.type": "#microsoft.graph.licenseDetails",
                # Graph's ids are opaque base64url strings (43 characters in the docs' example).
                "id": base64.urlsafe_b64encode(uuid.UUID(user.id).bytes + uuid.UUID(s).bytes).decode().rstrip("="),
                "skuId": s,
                "skuPartNumber": self.skus.get(s, ""),
                "servicePlans": [],
            }
            for s in user.sku_ids
        ]

    def subscribed_skus(self) -> list[dict[str, Any]]:
        """The tenant's subscriptions (api-reference subscribedsku-list, resource subscribedSku)."""
        tenant = self.config.tenant_id
        return [
            {
                "@odata.type": "#microsoft.graph.subscribedSku",
                "id": f"{tenant}_{skuid}",
                "accountId": tenant,
                "accountName": "Contoso",
                "appliesTo": "User",
                "capabilityStatus": "Enabled",
                "consumedUnits": sum(skuid in u.sku_ids for u in self.users.values()),
                "prepaidUnits": {"enabled": 1000, "suspended": 0, "warning": 0, "lockedOut": 0},
                "servicePlans": [],
                "skuId": skuid,
                "skuPartNumber": part,
                "subscriptionIds": [],
            }
            for skuid, part in sorted(self.skus.items(), key=lambda item: item[1])
        ]

    def seed_user(self, upn: str, skus: list[str], display_name: str = "", object_id: str = "") -> User:
        """A user with these licences (part numbers; subscribed by the tenant on first use). Seeding a UPN
        again replaces its licences: an admin assigning or removing a licence."""
        if not upn or "@" not in upn:
            raise ValueError(f"userPrincipalName {upn!r} must look like name@domain")
        ids = []
        for part in skus:
            if not isinstance(part, str) or not part.strip():
                raise ValueError("skus must be non-empty part numbers such as SPE_E3")
            ids.append(sku_id(part.strip()))
            self.skus.setdefault(ids[-1], part.strip().upper())
        existing = next((u for u in self.users.values() if u.user_principal_name.casefold() == upn.casefold()), None)
        if existing is not None:
            existing.sku_ids = ids
            existing.display_name = display_name or existing.display_name
            return existing
        user = User(str(object_id or uuid.uuid4()).lower(), upn, display_name or upn.split("@")[0], ids)
        self.users[user.id] = user
        return user

    # -- control ----------------------------------------------------------------------------------------
    def enroll(self, serial: str, when: datetime | None = None) -> AutopilotDevice:
        device = self.find_device(serial)
        device.enrollment_state = "enrolled"
        device.last_contacted = iso(when or self.clock.now())
        return device

    def find_device(self, serial: str) -> AutopilotDevice:
        device_id = self._devices_by_serial.get(serial_key(serial))
        if device_id:
            return self.devices[device_id]
        raise GraphError(404, "ResourceNotFound", f"no Autopilot device with serial {serial!r}")

    def entra_for_serial(self, serial: str) -> EntraDevice:
        entra = self._entra_for(self.find_device(serial))
        if entra is None:
            raise GraphError(404, "ResourceNotFound", f"the Entra device of {serial!r} is not visible yet")
        return entra

    def seed_device(self, serial: str, manufacturer: str, model: str, group_tag: str = "") -> AutopilotDevice:
        """A device registered before the product ran (so an import of it answers 806)."""
        device = AutopilotDevice(
            id=str(uuid.uuid4()),
            serial=serial,
            manufacturer=manufacturer,
            model=model,
            group_tag=group_tag,
            product_key="",
            user="",
            aad_device_id=str(uuid.uuid4()),
            hash_digest=None,
            entra_visible_at=self.clock.monotonic(),
        )
        self._add_device(device)
        self.advance()
        return device
