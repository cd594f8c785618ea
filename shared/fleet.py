"""Keep registered devices as their profile says: group tag, Entra group membership, and the
Ready / Active / Inactive states; and nudge Intune with a sync when something changed.

Reads are paged and done once per run (all Autopilot devices, each profile group's members). Writes happen
only for drift: a run over a fleet with nothing drifted makes no write calls at all.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from .config import ProfilesDocument
from .graph.autopilot import AutopilotClient, AutopilotDevice, GraphRefused, GraphUnavailable
from .graph.directory import DirectoryClient, GroupInfo, MembershipChange
from .intake.model import serial_key
from .licences import WARNING_PREFIX, LicenceReader, check_licences
from .state import DeviceRecord, StateStore
from .states import DISPLAY, REGISTERED, DeviceState

log = logging.getLogger("registrar.fleet")

ACTIVE_WITHIN = timedelta(days=7)
SYNC_INTERVAL = timedelta(minutes=10)
MAX_LOOKUPS_PER_RUN = 1000  # Entra object lookups (20 per $batch call); the object id is kept once found
NOT_IN_AUTOPILOT = "Not found in Autopilot: deleted or not visible yet"
TAG_PROPAGATION = timedelta(minutes=30)  # a group tag sent is not sent again for this long
MAX_CHANGES_PER_RUN = 1000  # membership writes per run (Intune's budget is about 1,500 writes per 5 minutes)


@dataclass(slots=True)
class FleetSummary:
    devices: int = 0
    tags_fixed: int = 0
    members_added: int = 0
    members_removed: int = 0
    entra_missing: int = 0
    deferred_changes: int = 0
    state_changes: int = 0
    dynamic_groups: list[str] = field(default_factory=list)
    synced: bool = False
    licence_warnings: int = 0
    full_check: bool = True  # False: only devices not yet confirmed in their group were handled
    changed_uploads: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)


def enrollment_state(device: AutopilotDevice, now: datetime) -> DeviceState:
    if device.enrollment_state != "enrolled":
        return DeviceState.READY
    try:
        seen = datetime.fromisoformat(device.last_contacted.replace("Z", "+00:00"))
    except ValueError:
        return DeviceState.INACTIVE
    if seen.tzinfo is None:
        seen = seen.replace(tzinfo=UTC)
    return DeviceState.ACTIVE if now - seen <= ACTIVE_WITHIN else DeviceState.INACTIVE


async def reconcile_fleet(
    store: StateStore,
    autopilot: AutopilotClient,
    directory: DirectoryClient,
    profiles: ProfilesDocument,
    *,
    now: datetime | None = None,
    newly_registered: int = 0,
    licences: LicenceReader | None = None,
    full_check_every: timedelta = timedelta(0),
    just_registered: frozenset[str] | set[str] = frozenset(),
) -> FleetSummary:
    """Every run settles what is new (a device not yet confirmed in its profile's group: Entra lookup and
    add, no listing); a full check (every Autopilot record and every group's members, to undo drift, fix
    tags and track Active/Inactive) runs once ``full_check_every`` has passed since the last one. So the
    Graph reads of a run follow the work there is, not the size of the fleet.

    ``just_registered`` (row keys that became Ready in this very run) are not looked up in Entra yet: their
    device object appears some time after the Autopilot record, so "not found" is all a lookup would say
    (autopilot-graph-facts.md, Entra ID side); the next run finds them."""
    summary = FleetSummary()
    now = now or datetime.now(UTC)
    managed = [d for d in store.all_devices() if DeviceState(d.state) in REGISTERED]
    summary.devices = len(managed)
    if not managed:
        return summary
    last = store.get_meta("fleet").get("lastFullCheck", "") if full_check_every else ""
    if last and now - datetime.fromisoformat(last) < full_check_every:
        summary.full_check = False
        await _licences(store, licences, profiles, managed, now, summary)
        unsettled = [d for d in managed if d.member_of != _group_of(profiles, d)]
        if unsettled:
            try:
                await _membership(
                    store, directory, profiles, unsettled, summary, list_members=False, skip_lookup=just_registered
                )
            except (GraphUnavailable, GraphRefused) as error:
                summary.errors.append(f"group membership: {error}")
        if newly_registered:
            summary.synced = await _sync_sparingly(store, directory, now)
        return summary
    try:
        records = {serial_key(d.serial): d for d in await autopilot.list_devices()}
    except (GraphUnavailable, GraphRefused) as error:  # recorded; the timer still refreshes the reports
        summary.errors.append(f"listing Autopilot devices: {error}")
        return summary
    # Each device's changes are decided first and saved together: 100 devices per storage transaction.
    changes: dict[str, list[Change]] = {}
    for device in managed:
        decided = await _tag_and_state(
            directory, profiles, device, records.get(serial_key(device.serial)), now, summary
        )
        if decided:
            changes[device.key] = decided
    managed = _save(store, managed, changes)
    await _licences(store, licences, profiles, managed, now, summary)
    try:
        await _membership(store, directory, profiles, managed, summary, list_members=True, skip_lookup=just_registered)
    except (GraphUnavailable, GraphRefused) as error:  # any refusal is recorded and the run goes on
        summary.errors.append(f"group membership: {error}")
    if full_check_every:
        store.put_meta("fleet", {"lastFullCheck": now.isoformat()})
    if summary.tags_fixed or newly_registered:
        summary.synced = await _sync_sparingly(store, directory, now)
    log.info(
        "fleet reconciled",
        extra={
            "devices": summary.devices,
            "tags_fixed": summary.tags_fixed,
            "members_added": summary.members_added,
            "members_removed": summary.members_removed,
        },
    )
    return summary


Change = Callable[[DeviceRecord], None]


async def _licences(
    store: StateStore,
    licences: LicenceReader | None,
    profiles: ProfilesDocument,
    managed: list[DeviceRecord],
    now: datetime,
    summary: FleetSummary,
) -> None:
    """Ready devices whose user lacks a profile's requiredLicenses say so (each device paced by the check)."""
    if licences is None:
        return
    checked = await check_licences(store, licences, profiles, managed, now)
    summary.licence_warnings = checked.warnings
    summary.changed_uploads |= checked.changed_uploads
    summary.errors += checked.errors


def _save(store: StateStore, managed: list[DeviceRecord], changes: dict[str, list[Change]]) -> list[DeviceRecord]:
    """Save the decided changes in bulk; the list again, with the saved records in place."""
    if not changes:
        return managed

    def apply(record: DeviceRecord) -> None:
        for change in changes[record.key]:
            change(record)

    saved = store.update_devices([d for d in managed if d.key in changes], apply)
    return [saved.get(d.key, d) for d in managed]


async def _tag_and_state(
    directory: DirectoryClient,
    profiles: ProfilesDocument,
    device: DeviceRecord,
    record: AutopilotDevice | None,
    now: datetime,
    summary: FleetSummary,
) -> list[Change]:
    """Repair the group tag in Autopilot when it drifted; return the changes to save on the device."""
    if record is None:
        # Normal, not a crash: the record appears a while after the import says "complete", and admins
        # delete Autopilot records by hand (autopilot-graph-facts.md, Timing). Say so once, change nothing.
        if device.message != NOT_IN_AUTOPILOT:
            summary.changed_uploads.add(device.upload_id)
            return [lambda d: setattr(d, "message", NOT_IN_AUTOPILOT)]
        return []
    decided: list[Change] = []
    profile = profiles.profiles.get(device.profile)
    if profile and record.group_tag != profile.group_tag and not _tag_in_flight(device, profile.group_tag, now):
        try:
            await directory.update_group_tag(record.id, profile.group_tag)
            summary.tags_fixed += 1
            # updateDeviceProperties shows in reads many minutes later (users report >10): remember it was
            # sent, so the next runs do not send it again while it propagates.
            sent = f"{profile.group_tag}@{now.isoformat(timespec='seconds')}"
            decided.append(lambda d: setattr(d, "tag_sent", sent))
        except (GraphUnavailable, GraphRefused) as error:
            summary.errors.append(f"{device.serial}: group tag: {error}")
    state = enrollment_state(record, now)
    changed = (
        DeviceState(device.state) != state
        or device.autopilot_id != record.id
        or device.aad_device_id != record.aad_device_id
        or device.last_contacted != record.last_contacted
        or device.message == NOT_IN_AUTOPILOT
    )
    if not changed:
        return decided

    def apply(d: DeviceRecord) -> None:
        d.state = state
        d.autopilot_id, d.aad_device_id = record.id, record.aad_device_id
        d.enrollment_state, d.last_contacted = record.enrollment_state, record.last_contacted
        if d.error_code != "806" and not (state == DeviceState.READY and d.message.startswith(WARNING_PREFIX)):
            d.message = DISPLAY[state]  # a licence warning stays while the device stays Ready
            if state == DeviceState.INACTIVE:
                d.message = f"Inactive: enrolled, last seen {record.last_contacted[:10] or 'never'} (over 7 days ago)"

    if DeviceState(device.state) != state:
        summary.state_changes += 1
        summary.changed_uploads.add(device.upload_id)
    return [*decided, apply]


def _tag_in_flight(device: DeviceRecord, tag: str, now: datetime) -> bool:
    """The same tag was sent within TAG_PROPAGATION: Graph has it, reads do not show it yet."""
    sent_tag, _, at = device.tag_sent.rpartition("@")
    if sent_tag != tag or not at:
        return False
    try:
        return now - datetime.fromisoformat(at) < TAG_PROPAGATION
    except ValueError:
        return False


def _group_of(profiles: ProfilesDocument, device: DeviceRecord) -> str:
    profile = profiles.profiles.get(device.profile)
    return profile.group_id if profile else ""


_GROUPS: dict[str, GroupInfo] = {}  # group id -> its type: read again at each full check


async def _group_info(directory: DirectoryClient, group_id: str, fresh: bool) -> GroupInfo:
    """A group's type (assigned or dynamic) changes rarely: read at full checks, remembered in between."""
    if fresh or group_id not in _GROUPS:
        _GROUPS[group_id] = await directory.group(group_id)
    return _GROUPS[group_id]


async def _membership(
    store: StateStore,
    directory: DirectoryClient,
    profiles: ProfilesDocument,
    managed: list[DeviceRecord],
    summary: FleetSummary,
    *,
    list_members: bool,
    skip_lookup: frozenset[str] | set[str] = frozenset(),
) -> None:
    """Each device in its profile's group and in no other profile's group. With ``list_members`` every
    group is listed (drift anywhere is found); without, only the given devices are handled, from what
    their records say: added to their group, removed from the group they were confirmed in before (a
    profile move). A device's ``member_of`` records the group it was last confirmed in."""
    groups: dict[str, GroupInfo] = {}
    members: dict[str, set[str]] = {}
    object_by_device_id: dict[str, str] = {}
    for name, profile in profiles.profiles.items():
        try:
            info = await _group_info(directory, profile.group_id, fresh=list_members)
        except GraphRefused as error:  # a wrong groupId must not stop the other profiles
            summary.errors.append(
                f"profile {name!r}: group {profile.group_id} cannot be read ({error.status}): "
                "check groupId and the GroupMember.ReadWrite.All permission"
            )
            groups[name] = GroupInfo(profile.group_id, dynamic=True)  # treated as hands-off this run
            continue
        groups[name] = info
        if info.dynamic:
            summary.dynamic_groups.append(name)  # membership follows the tag; nothing to write
            continue
        members[name] = set()
        if list_members:
            listed = await directory.members(profile.group_id)
            members[name] = {m.object_id for m in listed}
            object_by_device_id.update({m.device_id: m.object_id for m in listed if m.device_id})
    changes: list[MembershipChange] = []
    unknown = [
        d.aad_device_id
        for d in managed
        if d.aad_device_id
        and not d.entra_object_id
        and d.aad_device_id not in object_by_device_id
        and d.key not in skip_lookup
    ]
    # Bounded (a run must end well within the Functions timeout at any fleet size) and batched: 20 lookups
    # per HTTP call. The object id is kept on the device once found, so each device is looked up once.
    looked_up = await directory.find_devices(unknown[:MAX_LOOKUPS_PER_RUN]) if unknown else {}
    found: dict[str, str] = {}  # row key -> Entra object id, kept on the device (saved in bulk below)
    confirmed: dict[str, str] = {}  # row key -> the group it is now known to be in
    adding: dict[tuple[str, str], str] = {}  # (group, object) -> row key
    for device in managed:
        object_id = (
            device.entra_object_id
            or object_by_device_id.get(device.aad_device_id, "")
            or looked_up.get(device.aad_device_id, "")
        )
        if not object_id:
            summary.entra_missing += 1  # eventual consistency: the Entra object is not there yet
            continue
        if object_id != device.entra_object_id:
            found[device.key] = object_id
        own = groups.get(device.profile)
        if own is not None and own.dynamic and device.member_of != own.id and device.profile in profiles.profiles:
            confirmed[device.key] = own.id  # the tag decides; nothing of ours to confirm
        for name, profile in profiles.profiles.items():
            if groups[name].dynamic:
                continue
            inside = object_id in members[name]
            if name == device.profile and not inside:
                changes.append(MembershipChange(profile.group_id, object_id, add=True))
                adding[(profile.group_id, object_id)] = device.key
            elif name == device.profile and device.member_of != profile.group_id:
                confirmed[device.key] = profile.group_id  # seen in the listing
            elif name != device.profile and (inside or (not list_members and device.member_of == profile.group_id)):
                changes.append(MembershipChange(profile.group_id, object_id, add=False))
    deferred = changes[MAX_CHANGES_PER_RUN:]  # the write budget is shared: the rest waits for the next run
    summary.deferred_changes = len(deferred)
    results = (await directory.apply_membership(changes[:MAX_CHANGES_PER_RUN])).items() if changes else []
    for change, result in results:
        if result.done:
            if change.add:
                summary.members_added += 1
                confirmed[adding[(change.group_id, change.object_id)]] = change.group_id
            else:
                summary.members_removed += 1
        elif result.status == 429:
            summary.deferred_changes += 1  # throttled: the next run tries again
        else:
            what = "add to" if change.add else "removal from"
            summary.errors.append(
                f"membership {what} group {change.group_id} of {change.object_id}: HTTP {result.status} "
                f"{result.code}: {result.message}".strip()
            )

    def keep(device: DeviceRecord) -> None:
        device.entra_object_id = found.get(device.key, device.entra_object_id)
        device.member_of = confirmed.get(device.key, device.member_of)

    if found or confirmed:
        store.update_devices([d for d in managed if d.key in found or d.key in confirmed], keep)


async def _sync_sparingly(store: StateStore, directory: DirectoryClient, now: datetime) -> bool:
    last = store.get_meta("sync").get("last")
    if last and now - datetime.fromisoformat(last) < SYNC_INTERVAL:
        return False
    try:
        synced = await directory.sync()
    except GraphRefused as error:
        log.warning("autopilot sync refused", extra={"status": error.status})
        return False
    store.put_meta("sync", {"last": now.isoformat()})  # a 409/429 also counts: "later" means in 10 minutes
    return synced
