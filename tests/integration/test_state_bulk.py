"""The state store's bulk path on real Azurite: devices read 14 to a query and saved 100 to a transaction
must behave exactly like one-by-one saves: no change lost to a concurrent writer, the history intact,
the polling index in step."""

from __future__ import annotations

import json
import uuid

import pytest

from shared import history
from shared.history import timeline
from shared.state import DeviceRecord, StateStore
from shared.states import DeviceState
from shared.storage import table_service


@pytest.fixture
def store(settings) -> StateStore:
    return StateStore(table_service(settings), f"b{uuid.uuid4().hex[:10]}")


def _devices(store: StateStore, count: int) -> list[str]:
    records = [
        DeviceRecord(
            serial=f"SN/{n:04d}#",  # characters a row key refuses are escaped the same way everywhere
            profile="standard",
            partner="",
            group_tag="Standard",
            hash_digest=f"{n:064x}",
            upload_id="u1",
            file="device-uploads/standard/a.csv",
            line=n + 2,
            hardware_hash="AAAA",
        )
        for n in range(count)
    ]
    for start in range(0, count, 100):
        store.create_devices(records[start : start + 100])
    return [r.serial for r in records]


def test_many_devices_read_and_saved_in_bulk_keep_hash_history_and_index(store):
    serials = _devices(store, 130)
    read = store.get_devices(serials + ["NOT-THERE"])
    assert len(read) == 130  # more than one query and more than one transaction

    def importing(record: DeviceRecord) -> None:
        record.state = DeviceState.IMPORTING

    saved = store.update_devices(read.values(), importing)
    assert len(saved) == 130
    assert sorted(store.pending_serials()) == sorted(serials)  # entered the polling index

    def ready(record: DeviceRecord) -> None:
        record.state, record.message = DeviceState.READY, "Ready for user"

    store.update_devices(saved.values(), ready)  # the ETags from the first save: no read in between
    assert store.pending_serials() == []  # and left it
    device = store.get_device(serials[7])
    assert device.state == DeviceState.READY
    assert device.hardware_hash == "AAAA"  # a merge from a listed record never drops the hash
    texts = [e.text for e in timeline(store, device)]
    assert any("Queued → Importing" in t for t in texts) and any("→ Ready for user" in t for t in texts)


def test_a_device_changed_since_it_was_read_is_decided_again_not_overwritten(store):
    serials = _devices(store, 30)
    read = store.get_devices(serials)
    # Another worker moves one device on after our read (an admin's retry, say).
    store.update_device(serials[3], lambda d: setattr(d, "state", DeviceState.FAILED))

    def claim(record: DeviceRecord) -> bool:
        if record.state != DeviceState.QUEUED:
            return False  # decided on the fresh record: nothing to do
        record.state = DeviceState.IMPORTING
        return True

    saved = store.update_devices(read.values(), claim)
    assert len(saved) == 29 and store.get_device(serials[3]).state == DeviceState.FAILED
    assert all(store.get_device(s).state == DeviceState.IMPORTING for s in serials if s != serials[3])


def test_history_is_capped_on_the_entity_and_a_full_save_keeps_the_newest(store):
    (serial,) = _devices(store, 1)
    for n in range(history.MAX_EVENTS + 20):
        store.update_device(serial, lambda d, n=n: setattr(d, "message", f"step {n}"))
    device = store.get_device(serial)
    assert len(device.events) == history.MAX_EVENTS
    newest = json.loads(device.events[max(device.events)])
    assert newest["text"] == f"step {history.MAX_EVENTS + 19}"


def test_registration_waiting_says_whether_any_device_still_needs_its_import(store):
    serials = _devices(store, 3)
    assert store.registration_waiting()  # Queued
    store.update_devices(store.get_devices(serials).values(), lambda d: setattr(d, "state", DeviceState.READY))
    assert not store.registration_waiting()
