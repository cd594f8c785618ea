"""The licence check: a device in *Ready for user* whose assigned user lacks a licence its profile requires
says so ("Ready for user, but ann@contoso.com lacks SPE_E3"). A warning, not a state: the device stays Ready.

What Graph allows an application (the product's managed identity) to read, per the api-reference tables:

- ``GET /users/{id}/licenseDetails`` would name the part numbers directly, but its permission table
  (``user-list-licensedetails``) says Application: *Not supported*. So the product does not call it.
- ``GET /users/{id | userPrincipalName}?$select=assignedLicenses`` (``user-get``; least privileged
  application permission ``User.Read.All``): the SKU ids assigned to the user, "including inherited
  (group-based) licenses" (user resource, ``assignedLicenses``; returned only on ``$select``).
- ``GET /subscribedSkus?$select=skuId,skuPartNumber`` (``subscribedsku-list``; ``LicenseAssignment.Read.All``):
  the tenant's SKU ids and their part numbers, read once per run.

Cost: nothing at all unless a profile has ``requiredLicenses`` and one of its Ready devices has an assigned
user due for a check; then one ``subscribedSkus`` read per run and one user read per user per run, and a
device is checked again only after :data:`RECHECK_AFTER` (the time is kept on the device record).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph import GraphServiceClient
from msgraph.generated.subscribed_skus.subscribed_skus_request_builder import SubscribedSkusRequestBuilder
from msgraph.generated.users.item.user_item_request_builder import UserItemRequestBuilder
from msgraph_core import PageIterator

from .config import ProfilesDocument
from .graph.autopilot import GraphRefused, GraphUnavailable, classify
from .state import DeviceRecord, StateStore
from .states import DISPLAY, DeviceState

log = logging.getLogger("registrar.licences")

READY = DISPLAY[DeviceState.READY]  # "Ready for user"
WARNING_PREFIX = f"{READY}, but "
RECHECK_AFTER = timedelta(hours=6)


# -- the pure decision ----------------------------------------------------------------------------------------
def lacking(required: Sequence[str], held: Iterable[str]) -> list[str]:
    """The required part numbers the user does not hold, in the profile's order (part numbers compare
    case-insensitively: ``spe_e3`` is ``SPE_E3``)."""
    have = {h.casefold() for h in held}
    return [r for r in required if r.casefold() not in have]


def ready_message(user: str, missing: Sequence[str]) -> str:
    """ "Ready for user", or "Ready for user, but <user> lacks <licence>[, <licence>]"."""
    return f"{WARNING_PREFIX}{user} lacks {', '.join(missing)}" if missing else READY


def not_found_message(user: str) -> str:
    return f"{WARNING_PREFIX}user {user} not found in Entra ID"


def is_ready_message(message: str) -> bool:
    """A message the licence check owns: plain "Ready for user" or one of its warnings. Anything else (806's
    explanation, "Not found in Autopilot") is left alone."""
    return message == READY or message.startswith(WARNING_PREFIX)


def check_key(user: str, required: Sequence[str]) -> str:
    """What a check was about: a new user or a changed requirement makes the last result stale."""
    return f"{user.casefold()}|{','.join(sorted(r.upper() for r in required))}"


def due(stamp: str, key: str, now: datetime, every: timedelta = RECHECK_AFTER) -> bool:
    """``stamp`` is the device's ``licence_checked`` ("<key>@<ISO time>"): due when it is about something
    else, unreadable, or older than ``every``."""
    checked_key, _, at = stamp.rpartition("@")
    if checked_key != key or not at:
        return True
    try:
        return now - datetime.fromisoformat(at) >= every
    except (TypeError, ValueError):
        return True


def stamp(key: str, now: datetime) -> str:
    return f"{key}@{now.isoformat(timespec='seconds')}"


# -- the Graph reads --------------------------------------------------------------------------------------------
class UserNotFound(Exception):
    """404: no user with this id or userPrincipalName in Entra ID."""


class LicenceReader:
    """The two reads of the licence check, on the real msgraph-sdk (as ``shared/graph/directory.py``)."""

    def __init__(self, client: GraphServiceClient) -> None:
        self._client = client

    async def sku_part_numbers(self) -> dict[str, str]:
        """skuId (lower case) -> skuPartNumber for every SKU the tenant subscribes to."""
        query = SubscribedSkusRequestBuilder.SubscribedSkusRequestBuilderGetQueryParameters(
            select=["skuId", "skuPartNumber"]
        )
        try:
            first = await self._client.subscribed_skus.get(RequestConfiguration(query_parameters=query))
            found: dict[str, str] = {}
            if first is None:
                return found

            def collect(item) -> bool:
                if item.sku_id and item.sku_part_number:
                    found[str(item.sku_id).lower()] = item.sku_part_number
                return True

            await PageIterator(first, self._client.request_adapter).iterate(collect)
            return found
        except Exception as error:  # noqa: BLE001
            raise classify(error) from error

    async def assigned_sku_ids(self, user: str) -> set[str]:
        """The SKU ids assigned to ``user`` (a userPrincipalName or object id), direct or group-based."""
        query = UserItemRequestBuilder.UserItemRequestBuilderGetQueryParameters(select=["id", "assignedLicenses"])
        try:
            found = await self._client.users.by_user_id(user).get(RequestConfiguration(query_parameters=query))
        except Exception as error:  # noqa: BLE001
            classified = classify(error)
            if isinstance(classified, GraphRefused) and classified.status == 404:
                raise UserNotFound(user) from error
            raise classified from error
        return {str(a.sku_id).lower() for a in (found.assigned_licenses or []) if found and a.sku_id}


# -- one run ------------------------------------------------------------------------------------------------------
@dataclass(slots=True)
class LicenceSummary:
    users_checked: int = 0
    warnings: int = 0  # devices whose message names a missing licence or an unknown user
    changed_uploads: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)


async def check_licences(
    store: StateStore,
    reader: LicenceReader,
    profiles: ProfilesDocument,
    devices: Sequence[DeviceRecord],
    now: datetime,
) -> LicenceSummary:
    """Set the Ready message of each device whose profile requires licences and whose assigned user is due
    for a check. Each user is read at most once per run. A missing permission (401/403), throttling or an
    outage stops the check for this run; a refusal about one user (e.g. a 400 for a UPN Graph cannot address)
    skips that user. Either way the devices keep their message and are due again next run, and the reconcile
    goes on; the reasons are in the summary's errors."""
    summary = LicenceSummary()
    catalog: dict[str, str] | None = None
    held_by_user: dict[str, set[str] | None] = {}  # user (casefold) -> part numbers held, None: no such user
    skipped: set[str] = set()  # users Graph refused to read this run (their devices keep their message)
    for device in devices:
        if DeviceState(device.state) != DeviceState.READY or not is_ready_message(device.message):
            continue
        profile = profiles.profiles.get(device.profile)
        required = list(profile.required_licenses) if profile else []
        user = device.assigned_user.strip()
        if not required or not user:
            if device.message != READY:  # the requirement or the user went away: so does the warning
                _save(store, device, READY, "", summary)
            continue
        key = check_key(user, required)
        if not due(device.licence_checked, key, now):
            continue
        if user.casefold() in skipped:
            continue
        if user.casefold() not in held_by_user:
            try:
                if catalog is None:
                    catalog = await reader.sku_part_numbers()
                    _unknown_skus(profiles, catalog, summary)
                try:
                    held_by_user[user.casefold()] = {catalog.get(s, s) for s in await reader.assigned_sku_ids(user)}
                except UserNotFound:
                    held_by_user[user.casefold()] = None
            except GraphRefused as error:
                if error.status in (401, 403) or catalog is None:  # a permission is missing: stop for this run
                    summary.errors.append(
                        f"licence check: {error} (the check needs User.Read.All and LicenseAssignment.Read.All)"
                    )
                    log.warning("licence check stopped for this run", extra={"status": error.status})
                    break
                # This user only (e.g. a userPrincipalName Graph cannot address): say so, check the others.
                summary.errors.append(f"licence check of {user} ({device.serial}): {error}")
                skipped.add(user.casefold())
                continue
            except GraphUnavailable as error:
                summary.errors.append(f"licence check: {error}; the next run goes on")  # throttled or down
                log.warning("licence check stopped for this run", extra={"status": error.status})
                break
            summary.users_checked += 1
        held = held_by_user[user.casefold()]
        message = not_found_message(user) if held is None else ready_message(user, lacking(required, held))
        if message != READY:
            summary.warnings += 1
        _save(store, device, message, stamp(key, now), summary)
    return summary


def _save(store: StateStore, device: DeviceRecord, message: str, checked: str, summary: LicenceSummary) -> None:
    def apply(d: DeviceRecord) -> bool | None:
        if DeviceState(d.state) != DeviceState.READY or not is_ready_message(d.message):
            return False  # changed meanwhile (enrolled, failed, moved): nothing to say
        if d.message == message and d.licence_checked == checked:
            return False
        d.message, d.licence_checked = message, checked
        return None

    if device.message != message:
        summary.changed_uploads.add(device.upload_id)
    store.update_device(device.serial, apply)


def _unknown_skus(profiles: ProfilesDocument, catalog: dict[str, str], summary: LicenceSummary) -> None:
    """A required part number the tenant has no subscription for is most likely a typo: say which, once."""
    known = {p.casefold() for p in catalog.values()}
    for name, profile in profiles.profiles.items():
        unknown = [r for r in profile.required_licenses if r.casefold() not in known]
        if unknown:
            summary.errors.append(
                f"profile {name!r}: requiredLicenses {', '.join(unknown)} not among the tenant's subscribed SKUs "
                "(GET /subscribedSkus): check the part numbers"
            )
