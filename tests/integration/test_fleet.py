"""Reconciliation on Azurite and the Graph emulator: tags, membership, Active/Inactive, stuck, sync."""

from datetime import UTC, datetime, timedelta

import pytest

from functions import reconcile
from registrar.localhost.host import LocalTimerRequest
from shared.fleet import reconcile_fleet
from shared.reconcile import reconcile_imports
from shared.states import DeviceState
from tests.helpers import csv_bytes, portal_row
from tests.integration.conftest import KIOSK_GROUP, STANDARD_GROUP, upload

pytestmark = [pytest.mark.anyio, pytest.mark.integration]
WRITE_METHODS = ("POST", "DELETE", "PATCH")


async def _registered(host, settings, serials, profile="standard"):
    upload(settings, "device-uploads", f"{profile}/f.csv", csv_bytes([portal_row(s) for s in serials]))
    for _ in range(4):
        await host.step()
    assert all(host.runtime.store.get_device(s).state == DeviceState.READY for s in serials)


def _members(graph, group_id):
    group = next(g for g in graph.ctl.state()["groups"] if g["id"] == group_id)
    entra = {e["id"]: e["displayName"] for e in graph.ctl.state()["entra"]}
    return sorted(entra[m] for m in group["members"])


def _writes(graph):
    counters = graph.ctl.counters()["requests"]
    return {k: n for k, n in counters.items() if k.split(" ")[0] in WRITE_METHODS and "$batch" not in k}


async def _run(host):
    return await reconcile.main(LocalTimerRequest(), host.runtime)


async def test_devices_join_their_profile_group_and_manual_changes_are_undone(host, settings, graph):
    await _registered(host, settings, ["PF-1", "PF-2"])
    assert _members(graph, STANDARD_GROUP) == ["PF-1", "PF-2"]
    graph.ctl.change_membership(STANDARD_GROUP, "PF-1", "remove")  # someone removes it by hand
    graph.ctl.change_membership(KIOSK_GROUP, "PF-2", "add")  # and puts another in a conflicting group
    run = await _run(host)
    assert (run.fleet.members_added, run.fleet.members_removed) == (1, 1)
    assert _members(graph, STANDARD_GROUP) == ["PF-1", "PF-2"]
    assert _members(graph, KIOSK_GROUP) == []


async def test_between_full_checks_runs_settle_new_devices_without_listing_and_drift_waits_for_the_check(
    host, settings, graph
):
    rt = host.runtime
    hour = timedelta(hours=1)
    await _registered(host, settings, ["PF-1"])
    start = datetime.now(UTC)
    first = await reconcile_fleet(rt.store, rt.graph, rt.directory, settings.profiles, full_check_every=hour, now=start)
    assert first.full_check and _members(graph, STANDARD_GROUP) == ["PF-1"]
    # A new device arrives and someone removes PF-1 by hand, between full checks.
    upload(settings, "device-uploads", "standard/g.csv", csv_bytes([portal_row("PF-2")]))
    for _ in range(3):
        await host.step()  # the local host's own runs are full checks (interval 0): undo them below
    graph.ctl.change_membership(STANDARD_GROUP, "PF-1", "remove")
    graph.ctl.change_membership(STANDARD_GROUP, "PF-2", "remove")
    graph.ctl.reset_counters()
    later = start + timedelta(minutes=10)
    run = await reconcile_fleet(rt.store, rt.graph, rt.directory, settings.profiles, full_check_every=hour, now=later)
    assert not run.full_check
    assert _members(graph, STANDARD_GROUP) == []  # PF-2 was settled already by the host; nothing listed
    routes = {k.rsplit(" ", 1)[0] for k in graph.ctl.counters()["requests"] if k.count(" ") == 2}
    assert not routes & {"GET autopilotDevices.list", "GET groups.members.list", "GET groups.get"}, routes
    # A device not yet confirmed in its group is settled by the next run, without a listing.
    rt.store.update_device("PF-2", lambda d: setattr(d, "member_of", ""))
    run = await reconcile_fleet(rt.store, rt.graph, rt.directory, settings.profiles, full_check_every=hour, now=later)
    assert not run.full_check and run.members_added == 1 and _members(graph, STANDARD_GROUP) == ["PF-2"]
    # The full check, once the period has passed, finds the hand-made drift and undoes it.
    run = await reconcile_fleet(
        rt.store, rt.graph, rt.directory, settings.profiles, full_check_every=hour, now=start + 2 * hour
    )
    assert run.full_check and _members(graph, STANDARD_GROUP) == ["PF-1", "PF-2"]


async def test_changed_group_tag_is_restored(host, settings, graph):
    await _registered(host, settings, ["PF-1"])
    device = graph.ctl.state()["devices"][0]
    from shared.graph.directory import DirectoryClient  # noqa: F401 - same client the product uses

    await host.runtime.directory.update_group_tag(device["id"], "Tampered")
    run = await _run(host)
    assert run.fleet.tags_fixed == 1
    assert graph.ctl.state()["devices"][0]["groupTag"] == "Standard"
    entra = graph.ctl.state()["entra"][0]
    assert "[OrderId]:Standard" in entra["physicalIds"]


async def test_a_run_without_drift_makes_no_writes(host, settings, graph):
    await _registered(host, settings, [f"PF-{n}" for n in range(5)])
    await _run(host)  # settles membership, deletes, the first sync
    before = _writes(graph)
    graph.ctl.reset_counters()
    run = await _run(host)
    assert _writes(graph) == {}, (before, graph.ctl.counters())
    assert run.fleet.tags_fixed == run.fleet.members_added == run.fleet.members_removed == 0
    reads = graph.ctl.counters()["requests"]
    assert set(k.rsplit(" ", 1)[0] for k in reads if " " in k) <= {
        "GET autopilotDevices.list",
        "GET groups.get",
        "GET groups.members.list",
    }


async def test_enrolled_device_is_active_then_inactive_after_7_days(host, settings, graph):
    await _registered(host, settings, ["PF-1"])
    seen = datetime.now(UTC) - timedelta(hours=1)
    graph.ctl.enroll("PF-1", seen.strftime("%Y-%m-%dT%H:%M:%SZ"))
    await _run(host)
    assert host.runtime.store.get_device("PF-1").state == DeviceState.ACTIVE
    rt = host.runtime
    await reconcile_fleet(rt.store, rt.graph, rt.directory, settings.profiles, now=seen + timedelta(days=7, hours=2))
    device = rt.store.get_device("PF-1")
    assert device.state == DeviceState.INACTIVE and device.message.startswith("Inactive")


async def test_stuck_import_is_flagged(host, settings, graph):
    graph.ctl.configure(import_processing_seconds=7200)
    upload(settings, "device-uploads", "standard/f.csv", csv_bytes([portal_row("PF-1")]))
    for _ in range(3):
        await host.step()
    assert host.runtime.store.get_device("PF-1").state == DeviceState.PENDING
    summary = await reconcile_imports(
        host.runtime.store, host.runtime.graph, now=datetime.now(UTC) + timedelta(minutes=61)
    )
    assert summary.stuck == 1
    device = host.runtime.store.get_device("PF-1")
    assert device.error_code == "stuck" and "looks stuck" in device.message


async def test_sync_is_called_sparingly_and_its_429_tolerated(host, settings, graph):
    await _registered(host, settings, ["PF-1"])  # the first run after registration syncs
    syncs = lambda: sum(n for k, n in graph.ctl.counters()["requests"].items() if "autopilotSettings.sync" in k)  # noqa: E731
    assert syncs() == 1
    await host.runtime.directory.update_group_tag(graph.ctl.state()["devices"][0]["id"], "Drift")
    run = await _run(host)  # drift again within 10 minutes: no second sync
    assert run.fleet.tags_fixed == 1 and not run.fleet.synced and syncs() == 1
    host.runtime.store.put_meta("sync", {"last": (datetime.now(UTC) - timedelta(minutes=11)).isoformat()})
    long_ago = (datetime.now(UTC) - timedelta(minutes=31)).isoformat(timespec="seconds")
    host.runtime.store.update_device("PF-1", lambda d: setattr(d, "tag_sent", f"Standard@{long_ago}"))
    await host.runtime.directory.update_group_tag(graph.ctl.state()["devices"][0]["id"], "Drift")
    run = await _run(host)  # the emulator still refuses (its own 10-minute rule): tolerated, not an error
    assert run.fleet.tags_fixed == 1 and not run.fleet.synced and run.fleet.errors == []
    assert (
        graph.ctl.counters()["requests"].get("POST autopilotSettings.sync 429") == 1
        or graph.ctl.counters()["requests"].get("POST autopilotSettings.sync 409") == 1
    )


async def test_reports_show_device_states(host, settings, graph):
    await _registered(host, settings, ["PF-1"])
    from shared.storage import blob_service

    blobs = blob_service(settings)
    devices_csv = blobs.get_blob_client("device-uploads", "_reports/devices.csv").download_blob().readall()
    assert "PF-1,standard,,Ready for user" in devices_csv.decode("utf-8-sig")
    per_upload = blobs.get_blob_client("device-uploads", "_reports/standard/f.csv.result.csv").download_blob().readall()
    assert "Ready for user" in per_upload.decode("utf-8-sig")
    assert STANDARD_GROUP


async def test_a_missing_profile_group_is_reported_and_does_not_stop_the_others(host, settings, graph):
    await _registered(host, settings, ["PF-1"])
    import dataclasses

    from shared.config import Profile

    broken = settings.profiles.model_copy(deep=True)
    broken.profiles["kiosk"] = Profile(groupTag="Kiosk", groupId="99999999-9999-4999-8999-999999999999")
    host.runtime.settings = dataclasses.replace(settings, profiles=broken)
    graph.ctl.change_membership(STANDARD_GROUP, "PF-1", "remove")
    run = await _run(host)
    assert any("'kiosk'" in e and "cannot be read" in e for e in run.fleet.errors)
    assert run.fleet.members_added == 1 and _members(graph, STANDARD_GROUP) == ["PF-1"]


async def test_throttled_membership_writes_are_deferred_not_failed(host, settings, graph):
    graph.ctl.configure(entra_delay_seconds=3600)  # Entra objects not visible yet: no memberships written
    await _registered(host, settings, [f"TM-{n}" for n in range(30)])
    graph.ctl.configure(
        # One Entra write per window: 20 devices join with the first PATCH (members@odata.bind), the rest wait.
        throttle={"enabled": True, "app_writes": 5, "tenant_writes": 5, "window_seconds": 60, "entra_app_writes": 1}
    )
    graph.ctl.advance(3601)  # now they appear, all at once
    run = await _run(host)
    assert run.fleet.deferred_changes > 0 and run.fleet.errors == []
    assert run.fleet.members_added < 30
    graph.ctl.configure(throttle={"enabled": False})
    await _run(host)
    assert len(_members(graph, STANDARD_GROUP)) == 30


async def test_an_autopilot_record_deleted_by_hand_is_reported_not_a_crash(host, settings, graph):
    import httpx

    from shared.graph.credentials import DevelopmentCredential

    await _registered(host, settings, ["FL-1", "FL-2"])
    record = next(d for d in graph.ctl.state()["devices"] if d["serialNumber"] == "FL-1")
    token = DevelopmentCredential().get_token().token
    deleted = httpx.delete(
        f"{graph.url}/v1.0/deviceManagement/windowsAutopilotDeviceIdentities/{record['id']}",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert deleted.status_code in (200, 204)
    run = await _run(host)  # must not raise
    gone = host.runtime.store.get_device("FL-1")
    assert gone.message == "Not found in Autopilot: deleted or not visible yet"
    assert host.runtime.store.get_device("FL-2").state == DeviceState.READY
    assert not [e for e in run.fleet.errors if "FL-2" in e]
    writes = _writes(graph)
    await _run(host)
    assert _writes(graph) == writes  # said once: the next run writes nothing more for it


async def test_a_group_tag_already_sent_is_not_sent_again_while_it_propagates(host, settings, graph):
    await _registered(host, settings, ["PF-1"])
    device = graph.ctl.state()["devices"][0]
    await host.runtime.directory.update_group_tag(device["id"], "Tampered")
    assert (await _run(host)).fleet.tags_fixed == 1
    # Reads still show the old tag (updateDeviceProperties shows up many minutes later): the next runs wait.
    await host.runtime.directory.update_group_tag(device["id"], "Tampered")
    for _ in range(2):
        assert (await _run(host)).fleet.tags_fixed == 0
    assert host.runtime.store.get_device("PF-1").tag_sent.startswith("Standard@")
