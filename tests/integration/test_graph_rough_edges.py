"""Graph's rough edges, as users report them (autopilot-graph-facts.md, Timing and Throttling), each switched
on in the emulator, and what an admin sees the product do about it: a write applied but answered 503/504 is
not repeated, an Intune 429 without Retry-After is waited out, a record listed late is reported and then
settles, a group tag that shows in reads late is sent once, a sporadic 412 is recorded and retried by the
next run, and removing a non-member (404 or 400) counts as done."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from functions import reconcile, register
from registrar.localhost.host import LocalTimerRequest
from shared.fleet import NOT_IN_AUTOPILOT
from shared.graph.directory import MembershipChange
from shared.states import DeviceState
from tests.helpers import csv_bytes, portal_row, queued_messages
from tests.integration.conftest import KIOSK_GROUP, STANDARD_GROUP, upload
from tests.integration.test_register_rules import as_trigger_message

pytestmark = [pytest.mark.anyio, pytest.mark.integration]


async def _run(host):
    return await reconcile.main(LocalTimerRequest(), host.runtime)


async def _registered(host, settings, serials):
    upload(settings, "device-uploads", "standard/f.csv", csv_bytes([portal_row(s) for s in serials]))
    for _ in range(4):
        await host.step()
    assert all(host.runtime.store.get_device(s).state == DeviceState.READY for s in serials)


def _update_calls(graph) -> int:
    counters = graph.ctl.counters()["requests"]
    return sum(n for k, n in counters.items() if k.startswith("POST autopilotDevices.updateDeviceProperties"))


async def test_an_import_applied_but_answered_503_or_504_is_looked_up_and_never_imported_twice(host, settings, graph):
    serials = [f"GW-{n}" for n in range(3)]
    upload(settings, "device-uploads", "standard/a.csv", csv_bytes([portal_row(s) for s in serials]))
    host.poll_uploads()
    graph.ctl.configure(faults={"rate_5xx_after_write": 1.0})  # every write applied, then a gateway error
    outcomes = await register.main(queued_messages(host), host.runtime)
    assert {o.result for o in outcomes} == {"rescheduled"}
    assert graph.ctl.counters()["faults"]["after_write"] >= 1
    store = host.runtime.store
    for serial in serials:
        device = store.get_device(serial)
        assert device.state == DeviceState.IMPORTING and "Graph did not confirm the import" in device.message
    graph.ctl.configure(faults={"rate_5xx_after_write": 0.0})
    again = await register.main([as_trigger_message(store.get_device(s), settings.tenant_id) for s in serials], host.runtime)
    assert {o.result for o in again} == {"adopted"}
    assert graph.ctl.state()["importedSerials"] == dict.fromkeys(serials, 1)
    graph.ctl.advance(60)
    await _run(host)
    assert [store.get_device(s).state for s in serials] == [DeviceState.READY] * 3


async def test_an_intune_429_without_retry_after_is_waited_out_with_backoff(host, settings, graph):
    graph.ctl.configure(throttle={"enabled": True, "app_writes": 1, "window_seconds": 60, "intune_retry_after": False})
    upload(settings, "device-uploads", "standard/a.csv", csv_bytes([portal_row("NR-0")]))
    host.poll_uploads()
    await host.drain_queue()  # the only write of the window
    upload(settings, "device-uploads", "standard/b.csv", csv_bytes([portal_row("NR-1")]))
    host.poll_uploads()
    before = datetime.now(UTC)
    await host.drain_queue()
    assert host.counters.failed_batches == 0
    device = host.runtime.store.get_device("NR-1")
    assert device.state == DeviceState.QUEUED and device.attempts == 0  # a wait, not a failed attempt
    assert device.message.startswith("Graph asked us to wait")
    wait = (datetime.fromisoformat(device.next_attempt) - before).total_seconds()
    assert 1 <= wait <= 15 * 60  # its own backoff: neither at once nor forever
    waits = [wait]
    for _ in range(2):  # throttled again and again without Retry-After: each wait longer (exponential)
        before = datetime.now(UTC)
        store = host.runtime.store
        await register.main([as_trigger_message(store.get_device("NR-1"), settings.tenant_id)], host.runtime)
        device = store.get_device("NR-1")
        assert device.state == DeviceState.QUEUED and device.attempts == 0
        waits.append((datetime.fromisoformat(device.next_attempt) - before).total_seconds())
    assert waits[2] > 2 * waits[0], waits
    assert graph.ctl.state()["importedSerials"] == {"NR-0": 1}


async def test_a_record_listed_late_is_reported_then_settles_with_its_group(host, settings, graph):
    graph.ctl.configure(autopilot_listing_delay_seconds=900)
    upload(settings, "device-uploads", "standard/a.csv", csv_bytes([portal_row("LL-1")]))
    for _ in range(4):
        run = await host.step()
    store = host.runtime.store
    device = store.get_device("LL-1")
    assert device.message == NOT_IN_AUTOPILOT, device  # said plainly, not a crash
    assert graph.ctl.state()["importedSerials"] == {"LL-1": 1}
    graph.ctl.advance(901)
    run = await _run(host)
    assert run.fleet.errors == []
    device = store.get_device("LL-1")
    assert device.state == DeviceState.READY and device.message != NOT_IN_AUTOPILOT
    graph.ctl.advance(60)  # its Entra object
    await _run(host)
    group = next(g for g in graph.ctl.state()["groups"] if g["id"] == STANDARD_GROUP)
    assert len(group["members"]) == 1


async def test_a_group_tag_that_shows_in_reads_late_is_sent_once(host, settings, graph):
    await _registered(host, settings, ["TL-1"])
    record = graph.ctl.state()["devices"][0]
    await host.runtime.directory.update_group_tag(record["id"], "Tampered")  # by hand, visible at once
    graph.ctl.configure(property_read_delay_seconds=900)  # from now on, updates show 15 minutes later
    graph.ctl.reset_counters()
    assert (await _run(host)).fleet.tags_fixed == 1
    for _ in range(3):
        assert (await _run(host)).fleet.tags_fixed == 0  # reads still say "Tampered": no second send
    assert _update_calls(graph) == 1
    assert graph.ctl.state()["devices"][0]["groupTag"] == "Tampered"
    graph.ctl.advance(901)
    assert (await _run(host)).fleet.tags_fixed == 0
    assert graph.ctl.state()["devices"][0]["groupTag"] == "Standard" and _update_calls(graph) == 1


async def test_a_sporadic_412_is_recorded_per_device_and_the_next_run_fixes_it(host, settings, graph):
    await _registered(host, settings, ["PC-1", "PC-2"])
    for record in graph.ctl.state()["devices"]:
        await host.runtime.directory.update_group_tag(record["id"], "Tampered")
    graph.ctl.configure(faults={"rate_412": 1.0})
    run = await _run(host)  # must not raise: the reports are refreshed all the same
    assert run.fleet.tags_fixed == 0
    assert sorted(e.split(":")[0] for e in run.fleet.errors) == ["PC-1", "PC-2"]
    assert all("412" in e for e in run.fleet.errors), run.fleet.errors
    graph.ctl.configure(faults={"rate_412": 0.0})
    assert (await _run(host)).fleet.tags_fixed == 2
    assert {d["groupTag"] for d in graph.ctl.state()["devices"]} == {"Standard"}


@pytest.mark.parametrize("status", [404, 400])
async def test_removing_a_device_that_is_no_longer_a_member_counts_as_done(host, settings, graph, status):
    await _registered(host, settings, ["RM-1"])
    graph.ctl.advance(60)
    await _run(host)
    object_id = graph.ctl.state()["entra"][0]["id"]
    graph.ctl.configure(remove_nonmember_status=status)
    change = MembershipChange(KIOSK_GROUP, object_id, add=False)  # it was never in the kiosk group
    (result,) = (await host.runtime.directory.apply_membership([change])).values()
    assert result.status == status and result.done


async def test_membership_changes_throttled_for_longer_than_a_run_waits_are_left_to_the_next_run(host, settings, graph):
    """Graph's Retry-After is honoured, not cut short: sending again sooner is throttled again (and charged:
    "all requests accrue against your usage limits", learn.microsoft.com/graph/throttling)."""
    await _registered(host, settings, ["LT-1", "LT-2", "LT-3"])
    graph.ctl.advance(60)
    await _run(host)  # each device in its profile's group
    members = [e["id"] for e in graph.ctl.state()["entra"]]
    graph.ctl.configure(throttle={"enabled": True, "entra_app_writes": 1, "entra_window_seconds": 150})
    batches = graph.ctl.counters()["http"].get("POST /$batch", 0)
    started = time.monotonic()
    changes = [MembershipChange(STANDARD_GROUP, object_id, add=False) for object_id in members]
    results = await host.runtime.directory.apply_membership(changes)
    assert sorted(r.status for r in results.values()) == [204, 429, 429]
    assert graph.ctl.counters()["http"]["POST /$batch"] == batches + 1  # no second round inside Retry-After
    assert time.monotonic() - started < 5
