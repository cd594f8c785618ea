"""Settings, all from environment variables (app settings in Azure), validated once at start-up.

Profiles decide each device's group tag and Entra group; partners may only use the profiles on their
allow-list. A mistake here must stop the app with a message that names the setting, not fail per device.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from shared.intake.validate import GROUP_TAG_PATTERN, MAX_GROUP_TAG

ADMIN_CONTAINER = "device-uploads"
PARTNER_CONTAINER_PREFIX = "partner-"
REPORTS_PREFIX = "_reports/"
# The data account (uploads, reports, state, the upload-event journal): the app's own clients and the blob
# trigger's ``connection=`` read this connection. The host's own account is AzureWebJobsStorage.
DATA_STORAGE = "DataStorage"
HOST_STORAGE = "AzureWebJobsStorage"
_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?")
_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


class ConfigError(ValueError):
    """Configuration that cannot work; the message names the setting and the fix."""


class Profile(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    group_tag: str = Field(alias="groupTag")
    group_id: str = Field(alias="groupId")
    # SKU part numbers (as Graph's subscribedSku.skuPartNumber, e.g. "SPE_E3", "INTUNE_A") the assigned user
    # must hold before the device is handed over; a Ready device whose user lacks one says so (shared/licences.py).
    required_licenses: tuple[str, ...] = Field(default=(), alias="requiredLicenses")

    @field_validator("group_tag")
    @classmethod
    def _tag(cls, value: str) -> str:
        if len(value) > MAX_GROUP_TAG or not GROUP_TAG_PATTERN.fullmatch(value):
            raise ValueError(f"groupTag {value!r} must be letters, digits, '-', '_', '.' or single spaces")
        return value

    @field_validator("required_licenses", mode="before")
    @classmethod
    def _licences(cls, value: object) -> object:
        if not isinstance(value, list | tuple):
            raise ValueError('requiredLicenses must be a list of SKU part numbers such as ["SPE_E3"]')
        cleaned = []
        for item in value:
            if not isinstance(item, str) or not item.strip():
                raise ValueError(f"{item!r} is not a SKU part number (a non-empty string such as SPE_E3)")
            if "," in item or not item.strip().isprintable() or len(item.strip()) > 100:
                raise ValueError(f"{item.strip()[:40]!r} is not a SKU part number such as SPE_E3")
            if item.strip().upper() not in (c.upper() for c in cleaned):
                cleaned.append(item.strip())
        return tuple(cleaned)

    @field_validator("group_id")
    @classmethod
    def _group(cls, value: str) -> str:
        if not _GUID.fullmatch(value):
            raise ValueError(f"groupId {value!r} must be the Entra group's object id (a GUID)")
        return value.lower()


class Partner(BaseModel):
    model_config = ConfigDict(extra="forbid")

    profiles: list[str]


class ProfilesDocument(BaseModel):
    model_config = ConfigDict(extra="forbid")

    profiles: dict[str, Profile]
    partners: dict[str, Partner] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> ProfilesDocument:
        if not self.profiles:
            raise ValueError("at least one profile is required")
        for name in self.profiles:
            if not _NAME.fullmatch(name):
                raise ValueError(f"profile name {name!r} must be 1-40 lower-case letters, digits or '-'")
        for partner_id, partner in self.partners.items():
            if not _NAME.fullmatch(partner_id):
                raise ValueError(f"partner id {partner_id!r} must be 1-40 lower-case letters, digits or '-'")
            unknown = [p for p in partner.profiles if p not in self.profiles]
            if unknown:
                raise ValueError(f"partner {partner_id!r} allows unknown profile(s) {unknown}")
        return self


@dataclass(frozen=True, slots=True)
class StorageEndpoints:
    """Identity-based storage, as the Functions host and the blob SDK-type binding read a connection:
    ``<conn>__{blob,queue,table}ServiceUri`` with ``__credential=managedidentity`` and ``__clientId`` (a
    user-assigned identity). ``client_id`` None means DefaultAzureCredential's own choice."""

    blob: str
    queue: str
    table: str
    client_id: str | None = None


@dataclass(frozen=True, slots=True)
class Settings:
    profiles: ProfilesDocument
    # The DATA account (DataStorage): uploads, reports, state tables, upload-event journal. A connection
    # string (local), or None with storage_endpoints (Azure, managed identity).
    storage_connection: str | None
    storage_endpoints: StorageEndpoints | None
    servicebus_connection: str | None
    servicebus_namespace: str | None
    queue_name: str
    graph_base_url: str
    graph_credential: str  # "managed-identity" or "development"
    tenant_id: str
    table_prefix: str
    reconcile_schedule: str
    max_upload_bytes: int
    # Registration queue (Service Bus) facts the app must respect; Bicep passes the queue's own values.
    lock_duration_seconds: float = 300.0
    duplicate_window_seconds: float = 3600.0
    max_attempts: int = 5  # Graph attempts per device before it is "Registration failed" (retryable)
    # How long each timer run may spend deleting processed import records (after membership): every delete
    # is an Intune write, so at 100 writes / 20 s a run clears at most ~5 x this many records.
    cleanup_seconds: float = 240.0
    # How often the timer lists every Autopilot record and group member to undo drift, fix tags and track
    # Active/Inactive; in between, runs only settle new devices (shared/fleet.py). 0 = every run.
    fleet_check_seconds: float = 1800.0
    graph_write_budget: str = "intune=100/20,entra=3000/150"  # shared by every instance; "" = none
    max_delivery_count: int = 5  # the registration queue's maxDeliveryCount (Bicep passes the queue's own)
    # Every BlobCreated event of the upload containers, journaled by a second Event Grid subscription per
    # container into this storage queue of the data account; the reconcile sweep drains it (shared/sweep.py).
    upload_events_queue: str = "upload-events"
    # Where Event Grid dead-letters the events it could not deliver (blob container in the data account).
    upload_deadletter_container: str = "upload-events-deadletter"
    # A journaled upload without a record is left to the blob trigger this long before the sweep ingests it.
    sweep_grace_seconds: float = 120.0
    # The host's own storage (AzureWebJobsStorage) as a connection string: read only by the local host
    # (its blob-trigger queue); in Azure only the Functions host reads it.
    host_storage_connection: str | None = None

    @property
    def containers(self) -> list[str]:
        return [ADMIN_CONTAINER] + [PARTNER_CONTAINER_PREFIX + p for p in sorted(self.profiles.partners)]


# Every setting the app reads. The infra tests compare these lists with what the Bicep sets.
SETTING_NAMES = (
    "REGISTRAR_PROFILES",
    "REGISTRAR_PROFILES_FILE",
    "AzureWebJobsStorage",
    "DataStorage",
    "DataStorage__blobServiceUri",
    "DataStorage__queueServiceUri",
    "DataStorage__tableServiceUri",
    "DataStorage__credential",
    "DataStorage__clientId",
    "ServiceBusConnection",
    "ServiceBusConnection__fullyQualifiedNamespace",
    "REGISTRATION_QUEUE",
    "GRAPH_BASE_URL",
    "GRAPH_CREDENTIAL",
    "AZURE_TENANT_ID",
    "STATE_TABLE_PREFIX",
    "RECONCILE_SCHEDULE",
    "MAX_UPLOAD_BYTES",
    "SERVICEBUS_LOCK_DURATION",
    "SERVICEBUS_DUPLICATE_WINDOW",
    "REGISTRATION_MAX_ATTEMPTS",
    "RECONCILE_CLEANUP_SECONDS",
    "FLEET_CHECK_SECONDS",
    "GRAPH_WRITE_BUDGET",
    "SERVICEBUS_MAX_DELIVERY_COUNT",
    "UPLOAD_EVENTS_QUEUE",
    "UPLOAD_DEADLETTER_CONTAINER",
)
# Read only when running locally (connection strings, a profiles file); Azure uses the others.
LOCAL_ONLY_SETTINGS = ("REGISTRAR_PROFILES_FILE", "AzureWebJobsStorage", "DataStorage", "ServiceBusConnection")
# The host's storage (keys, deployment package, blob-trigger host queue): read by the Functions host only,
# never by our code in Azure; Bicep must set them (tests/unit/test_infra_settings.py).
HOST_STORAGE_SETTINGS = (
    "AzureWebJobsStorage__blobServiceUri",
    "AzureWebJobsStorage__queueServiceUri",
    "AzureWebJobsStorage__tableServiceUri",
    "AzureWebJobsStorage__credential",
    "AzureWebJobsStorage__clientId",
)
# Read by the Functions host, the Azure SDK credential chain or Application Insights, not by our code.
PLATFORM_SETTINGS = HOST_STORAGE_SETTINGS + (
    "ServiceBusConnection__credential",
    "ServiceBusConnection__clientId",
    "AZURE_CLIENT_ID",
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
)


def load_profiles(env: Mapping[str, str]) -> ProfilesDocument:
    raw = env.get("REGISTRAR_PROFILES")
    source = "REGISTRAR_PROFILES"
    if not raw and env.get("REGISTRAR_PROFILES_FILE"):
        source = f"REGISTRAR_PROFILES_FILE ({env['REGISTRAR_PROFILES_FILE']})"
        try:
            raw = Path(env["REGISTRAR_PROFILES_FILE"]).read_text(encoding="utf-8")
        except OSError as error:
            raise ConfigError(f"{source}: cannot read the file: {error.strerror}") from None
    if not raw:
        raise ConfigError("set REGISTRAR_PROFILES (JSON) or REGISTRAR_PROFILES_FILE (a path to it)")
    try:
        return ProfilesDocument.model_validate(json.loads(raw))
    except json.JSONDecodeError as error:
        raise ConfigError(f"{source}: not valid JSON ({error.msg} at line {error.lineno})") from None
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'document'}: {e['msg'].removeprefix('Value error, ')}"
            for e in error.errors()
        )
        raise ConfigError(f"{source}: {problems}") from None


_DURATION = re.compile(r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?")


def _seconds(env: Mapping[str, str], name: str, default: str, maximum: float, shown: str) -> float:
    try:
        value = float(env.get(name, default))
    except ValueError:
        value = -1.0
    if not 0 <= value <= maximum:
        raise ConfigError(f"{name} must be a number of seconds from 0 to {shown}")
    return value


def duration_seconds(name: str, value: str) -> float:
    """An ISO 8601 duration as Bicep and Service Bus write it (``PT5M``, ``PT1H``, ``P1D``), in seconds."""
    match = _DURATION.fullmatch(value.strip())
    if not match or not any(match.groups()):
        raise ConfigError(f"{name} must be an ISO 8601 duration such as PT5M, not {value!r}")
    days, hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    return days * 86400 + hours * 3600 + minutes * 60 + seconds


def _registration(env: Mapping[str, str]) -> dict[str, object]:
    from .budget import DEFAULT_BUDGETS, parse_budgets

    try:
        attempts = int(env.get("REGISTRATION_MAX_ATTEMPTS", "5"))
    except ValueError:
        attempts = 0
    if not 1 <= attempts <= 100:
        raise ConfigError("REGISTRATION_MAX_ATTEMPTS must be a whole number from 1 to 100")
    budget = env.get("GRAPH_WRITE_BUDGET", DEFAULT_BUDGETS)
    try:
        parse_budgets(budget)
    except ValueError as error:
        raise ConfigError(f"GRAPH_WRITE_BUDGET: {error}") from None
    try:
        deliveries = int(env.get("SERVICEBUS_MAX_DELIVERY_COUNT", "5"))
    except ValueError:
        deliveries = 0
    if not 1 <= deliveries <= 100:
        raise ConfigError("SERVICEBUS_MAX_DELIVERY_COUNT must be the queue's maxDeliveryCount, a whole number 1-100")
    cleanup = _seconds(env, "RECONCILE_CLEANUP_SECONDS", "240", 1200, "1200")
    fleet_check = _seconds(env, "FLEET_CHECK_SECONDS", "1800", 86400, "86400 (a day)")
    lock = duration_seconds("SERVICEBUS_LOCK_DURATION", env.get("SERVICEBUS_LOCK_DURATION", "PT5M"))
    if not 5 <= lock <= 300:  # "The maximum value for LockDuration is 5 minutes"
        raise ConfigError("SERVICEBUS_LOCK_DURATION must be the queue's lock duration: Service Bus allows PT5S to PT5M")
    window = duration_seconds("SERVICEBUS_DUPLICATE_WINDOW", env.get("SERVICEBUS_DUPLICATE_WINDOW", "PT1H"))
    if not 20 <= window <= 7 * 86400:  # duplicate-detection: "minimum value of 20 seconds to maximum value of 7 days"
        raise ConfigError(
            "SERVICEBUS_DUPLICATE_WINDOW must be the queue's duplicate detection window: Service Bus allows PT20S to P7D"
        )
    return {
        "lock_duration_seconds": lock,
        "duplicate_window_seconds": window,
        "max_attempts": attempts,
        "graph_write_budget": budget,
        "max_delivery_count": deliveries,
        "cleanup_seconds": cleanup,
        "fleet_check_seconds": fleet_check,
    }


# The one form the host, the blob SDK-type binding and the app all read: the service URIs. The binding
# resolves <conn>, <conn>__serviceUri or <conn>__blobServiceUri (plus __credential/__clientId); __accountName
# is not a general form there (1.1.2 special-cases it for AzureWebJobsStorage only, older releases not at
# all), and a blob trigger with __blobServiceUri also needs __queueServiceUri (its poison queue lives in the
# triggering blob's account: docs/blob-trigger.md).
_SERVICE_URIS = ("blobServiceUri", "queueServiceUri", "tableServiceUri")


def storage_endpoints(env: Mapping[str, str], connection: str = DATA_STORAGE) -> StorageEndpoints:
    uris = {name: (env.get(f"{connection}__{name}") or "").rstrip("/") for name in _SERVICE_URIS}
    missing = [f"{connection}__{name}" for name, uri in uris.items() if not uri]
    if len(missing) == len(_SERVICE_URIS):
        raise ConfigError(
            f"set {connection} (connection string) or {connection}__blobServiceUri, __queueServiceUri and "
            "__tableServiceUri (managed identity)"
        )
    if missing:
        raise ConfigError(f"identity-based storage needs all three service URIs; missing: {', '.join(missing)}")
    for name, uri in uris.items():
        if not uri.startswith("https://"):
            raise ConfigError(f"{connection}__{name} must be an https:// URI, not {uri!r}")
    credential = env.get(f"{connection}__credential") or None
    client_id = env.get(f"{connection}__clientId") or None
    if credential not in (None, "managedidentity"):
        raise ConfigError(f"{connection}__credential must be 'managedidentity', not {credential!r}")
    if client_id and credential != "managedidentity":
        raise ConfigError(f"{connection}__clientId needs {connection}__credential=managedidentity (as the host reads it)")
    return StorageEndpoints(uris["blobServiceUri"], uris["queueServiceUri"], uris["tableServiceUri"], client_id)


def data_storage(env: Mapping[str, str]) -> tuple[str | None, StorageEndpoints | None]:
    """The data account: ``DataStorage`` (a connection string) or ``DataStorage__*ServiceUri`` (identity).
    Locally only, with neither set, a connection string in ``AzureWebJobsStorage`` serves both (one
    Azurite). Identity-based host settings are never borrowed: data would land in the host's account."""
    connection = env.get(DATA_STORAGE) or None
    if connection:
        return connection, None
    if any(k.startswith(f"{DATA_STORAGE}__") for k in env):
        return None, storage_endpoints(env, DATA_STORAGE)
    host = env.get(HOST_STORAGE) or None
    if host:
        return host, None
    if any(k.startswith(f"{HOST_STORAGE}__") for k in env):
        raise ConfigError(
            f"set {DATA_STORAGE}__blobServiceUri, __queueServiceUri and __tableServiceUri (the data account); "
            f"{HOST_STORAGE}__* is the Functions host's own account and is never used for uploads or state"
        )
    raise ConfigError(
        f"set {DATA_STORAGE}__blobServiceUri, __queueServiceUri and __tableServiceUri (managed identity), or "
        f"locally a connection string in {DATA_STORAGE} or {HOST_STORAGE}"
    )

def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    profiles = load_profiles(env)
    storage, endpoints = data_storage(env)
    bus = env.get("ServiceBusConnection") or None
    namespace = env.get("ServiceBusConnection__fullyQualifiedNamespace") or None
    credential = env.get("GRAPH_CREDENTIAL", "managed-identity")
    if credential not in ("managed-identity", "development"):
        raise ConfigError(f"GRAPH_CREDENTIAL must be 'managed-identity' or 'development', not {credential!r}")
    try:
        max_bytes = int(env.get("MAX_UPLOAD_BYTES", str(512 * 1024 * 1024)))
    except ValueError:
        raise ConfigError("MAX_UPLOAD_BYTES must be a whole number of bytes") from None
    return Settings(
        profiles=profiles,
        storage_connection=storage,
        storage_endpoints=endpoints,
        servicebus_connection=bus,
        servicebus_namespace=namespace,
        queue_name=env.get("REGISTRATION_QUEUE", "device-registrations"),
        graph_base_url=env.get("GRAPH_BASE_URL", "https://graph.microsoft.com/v1.0"),
        graph_credential=credential,
        tenant_id=env.get("AZURE_TENANT_ID", "local"),
        table_prefix=env.get("STATE_TABLE_PREFIX", "registrar"),
        reconcile_schedule=env.get("RECONCILE_SCHEDULE", "0 */5 * * * *"),
        max_upload_bytes=max_bytes,
        upload_events_queue=env.get("UPLOAD_EVENTS_QUEUE", "upload-events"),
        upload_deadletter_container=env.get("UPLOAD_DEADLETTER_CONTAINER", "upload-events-deadletter"),
        host_storage_connection=env.get(HOST_STORAGE) or None,
        **_registration(env),  # type: ignore[arg-type]
    )
