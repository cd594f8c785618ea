"""The state store on Azure Table Storage (Azurite locally): devices, uploads, row outcomes, and the
index of devices that still need polling.

Every update is conditional on the entity's ETag, so two workers (or a redelivered message racing the
original) can never overwrite each other's changes silently: the loser re-reads and decides again.

Storage calls are the cost that grows with devices (each is a billed transaction and a round trip), so
work on many devices goes in bulk: devices are read 14 to a query (:meth:`StateStore.get_devices`), and
saved up to 100 to an entity-group transaction (:meth:`StateStore.update_devices`), each entity merged on
the ETag it was read with, its history event in the same write. All devices share one partition, which
is what lets one transaction carry any 100 of them.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import quote

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, TableServiceClient, TableTransactionError, UpdateMode

from . import history
from .intake.model import serial_key
from .states import POLLED, DeviceState

DEVICES_PARTITION = "device"
UPLOADS_PARTITION = "upload"
PENDING_PARTITION = "pending"
CLEANUP_PARTITION = "cleanup"
META_PARTITION = "meta"
BAD_MESSAGE_PARTITION = "badmessage"
_HASH_PROPERTY = "hashZ"  # the hardware hash, zlib-compressed, base64
_ROWS_PER_ENTITY_CHARS = 30_000  # a string property holds 32K characters
LATEST_PARTITION = "latest"
TRANSACTION_LIMIT = 100  # operations per entity-group transaction (Performing entity group transactions)
# "No more than 15 discrete comparisons are permitted within a $filter string" (Querying tables and entities,
# https://learn.microsoft.com/rest/api/storageservices/querying-tables-and-entities): PartitionKey + 14 RowKeys.
KEYS_PER_QUERY = 14


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _name_key(container: str, blob_name: str) -> str:
    """A blob name as a row key: names can be longer than a key may be (1 KiB), so their digest."""
    return hashlib.sha256(f"{container}/{blob_name}".encode()).hexdigest()


def row_key(serial: str) -> str:
    """Table keys refuse / \\ # ? and control characters; serials may contain some of them."""
    return quote(serial_key(serial), safe="")


@dataclass(slots=True)
class DeviceRecord:
    serial: str
    profile: str
    partner: str  # "" for admin uploads
    group_tag: str
    hash_digest: str  # hex; "" for partner tuples
    upload_id: str
    file: str
    line: int
    state: str = DeviceState.QUEUED
    message: str = ""
    error_code: str = ""
    assigned_user: str = ""
    product_key: str = ""
    import_id: str = ""
    tag_sent: str = ""  # "<group tag>@<ISO time>": the last tag repair sent, while it propagates
    licence_checked: str = ""  # "<user>|<required SKUs>@<ISO time>": the last licence check (shared/licences.py)
    member_of: str = ""  # the Entra group the device was last confirmed in (shared/fleet.py)
    import_request_id: str = ""  # Graph's request-id of the import call that carried the device
    import_requested_at: str = ""  # and when it answered (UTC)
    autopilot_id: str = ""
    aad_device_id: str = ""
    entra_object_id: str = ""
    enrollment_state: str = ""
    last_contacted: str = ""
    attempts: int = 0  # Graph import attempts (each delivery that reached the import step)
    generation: int = 0  # attempt generation: only the message of the current generation may register
    next_attempt: str = ""  # ISO time of the scheduled retry, when one is scheduled
    # Kept so that a retry, a replay or a re-drive can be sent without the upload. Never logged or reported:
    # every list query leaves it out (see _LIST_FIELDS).
    hardware_hash: str = field(default="", repr=False)
    pending_since: str = ""
    created: str = field(default_factory=now_iso)
    updated: str = field(default_factory=now_iso)
    etag: str | None = field(default=None, compare=False)
    stored_state: str = field(default="", compare=False)  # the state when read: index changes only on a change
    listed: bool = field(default=False, compare=False)  # read by a list query, without the hash: not savable
    # The device's history events (shared/history.py), stored as properties of the entity; not read by lists.
    events: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def key(self) -> str:
        return row_key(self.serial)

    @property
    def fingerprint(self) -> str:
        return self.hash_digest[:12] or "-"

    def to_entity(self) -> dict[str, Any]:
        """The whole entity, as a replace writes it: fields, the compressed hash, the newest events."""
        entity = _to_entity(self, DEVICES_PARTITION, self.key)
        hardware_hash = entity.pop("hardware_hash")
        if hardware_hash:  # 4 KB of mostly zero padding: compressed it is ~1 KB a device
            entity[_HASH_PROPERTY] = base64.b64encode(zlib.compress(base64.b64decode(hardware_hash))).decode()
        entity.update(history.keep_newest(self.events))
        return entity

    def merge_entity(self, event: tuple[str, str] | None) -> dict[str, Any]:
        """What a merge writes: every field but the hash (a listed record lacks it; it never changes after
        creation), and the new event; the stored hash and earlier events stay as they are."""
        entity = _to_entity(self, DEVICES_PARTITION, self.key)
        del entity["hardware_hash"]
        if event:
            entity[event[0]] = event[1]
        return entity

    @classmethod
    def from_entity(cls, entity: Any) -> DeviceRecord:
        record = _from_entity(cls, entity)
        if entity.get(_HASH_PROPERTY):
            record.hardware_hash = base64.b64encode(zlib.decompress(base64.b64decode(entity[_HASH_PROPERTY]))).decode()
        record.events = {k: v for k, v in entity.items() if k.startswith(history.EVENT_PREFIX)}
        return record


@dataclass(slots=True)
class UploadRecord:
    upload_id: str
    container: str
    blob_name: str
    profile: str
    partner: str
    status: str  # "processing", "complete", "rejected"
    reason: str = ""
    accepted: int = 0
    duplicates: int = 0
    moved: int = 0  # known devices this upload moved to another profile
    rejected: int = 0
    received: str = field(default_factory=now_iso)
    updated: str = field(default_factory=now_iso)
    etag: str | None = field(default=None, compare=False)

    def to_entity(self) -> dict[str, Any]:
        return _to_entity(self, UPLOADS_PARTITION, self.upload_id)

    @classmethod
    def from_entity(cls, entity: Any) -> UploadRecord:
        return _from_entity(cls, entity)


_NOT_STORED = ("etag", "stored_state", "listed", "events")


def _to_entity(record: Any, partition: str, row: str) -> dict[str, Any]:
    data = dataclasses.asdict(record)
    for name in _NOT_STORED:
        data.pop(name, None)
    return {"PartitionKey": partition, "RowKey": row, **data}


R = TypeVar("R", DeviceRecord, UploadRecord)


def _from_entity(cls: type[R], entity: Any) -> R:
    """Unknown properties are ignored and missing ones take defaults, so older rows still load."""
    names = {f.name for f in dataclasses.fields(cls)} - set(_NOT_STORED)
    record = cls(**{k: entity[k] for k in names if entity.get(k) is not None})
    record.etag = entity.metadata.get("etag")
    if isinstance(record, DeviceRecord):
        record.stored_state = record.state
    return record


@dataclass(frozen=True, slots=True)
class RowOutcome:
    line: int
    serial: str
    outcome: str  # "accepted", "duplicate", "moved", "rejected"
    code: str = ""
    message: str = ""

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_LIST_FIELDS = [f.name for f in dataclasses.fields(DeviceRecord) if f.name not in ("hardware_hash", *_NOT_STORED)]


class ConcurrencyConflict(Exception):
    """Someone else changed the entity since we read it."""


class StateStore:
    def __init__(self, service: TableServiceClient, prefix: str = "registrar") -> None:
        self._service = service
        self.devices = self._table(f"{prefix}devices")
        self.uploads = self._table(f"{prefix}uploads")
        self.rows = self._table(f"{prefix}rows")
        self.history = self._table(f"{prefix}history")  # each device's timeline (shared/history.py)

    def _table(self, name: str) -> TableClient:
        return self._service.create_table_if_not_exists(name)

    # -- devices ----------------------------------------------------------------------------------------------
    def get_device(self, serial: str) -> DeviceRecord | None:
        try:
            return DeviceRecord.from_entity(self.devices.get_entity(DEVICES_PARTITION, row_key(serial)))
        except ResourceNotFoundError:
            return None

    def create_device(self, record: DeviceRecord) -> bool:
        """False when the device exists already (another upload, or our own earlier attempt)."""
        try:
            meta = self.devices.create_entity(record.to_entity())
        except ResourceExistsError:
            return False
        record.etag = meta.get("etag")
        self._index([record])
        return True

    def create_devices(self, records: list[DeviceRecord]) -> set[str]:
        """Create new devices (at most 100) in one table transaction; if any exists already, one by one.
        Returns the keys of the devices created."""
        if not records:
            return set()
        try:
            results = self.devices.submit_transaction([("create", r.to_entity()) for r in records])
        except TableTransactionError:
            return {r.key for r in records if self.create_device(r)}
        for record, meta in zip(records, results, strict=True):
            record.etag = meta.get("etag")
        self._index(records)
        return {r.key for r in records}

    def save_device(self, record: DeviceRecord, event: tuple[str, str] | None = None) -> None:
        """Replace the device (with ``event`` added to its history) if nobody changed it since it was read;
        raise :class:`ConcurrencyConflict`."""
        if record.listed:
            raise ValueError("a device read by a list query lacks its hash: update it through update_device")
        record.updated = now_iso()
        if event:
            record.events[event[0]] = event[1]
        try:
            meta = self.devices.update_entity(
                record.to_entity(),
                mode=UpdateMode.REPLACE,
                etag=record.etag,
                match_condition=MatchConditions.IfNotModified,
            )
        except (ResourceModifiedError, ResourceNotFoundError) as error:
            if event:
                record.events.pop(event[0], None)
            raise ConcurrencyConflict(record.serial) from error
        record.etag = meta.get("etag")
        record.events = history.keep_newest(record.events)
        self._index([record])

    def _index(self, records: list[DeviceRecord]) -> None:
        """Keep the polling index in step with saved devices (at most 100, one partition), touching it only
        for those that entered or left it since they were read: several in one transaction."""
        entering = [r for r in records if r.state in POLLED and r.stored_state not in POLLED]
        leaving = [r for r in records if r.stored_state in POLLED and r.state not in POLLED]
        for record in records:
            record.stored_state = record.state
        if len(entering) + len(leaving) > 1:
            operations: list[Any] = [
                ("upsert", {"PartitionKey": PENDING_PARTITION, "RowKey": r.key, "serial": r.serial}) for r in entering
            ]
            operations += [("delete", {"PartitionKey": PENDING_PARTITION, "RowKey": r.key}) for r in leaving]
            try:
                self.devices.submit_transaction(operations)
                return
            except (TableTransactionError, ResourceNotFoundError):  # an index entry already gone: one by one
                pass
        for record in entering:
            self._mark_pending(record)
        for record in leaving:
            self.unmark_pending(record)

    def update_device(
        self, serial: str, change: Callable[[DeviceRecord], object], attempts: int = 5
    ) -> DeviceRecord | None:
        """Read, apply ``change``, save with the ETag; on a conflict read again and re-apply.
        Returns the saved record, or None when there is no such device or ``change`` returned False
        (it decided, on the fresh record, that there is nothing to do)."""
        for _ in range(attempts):
            record = self.get_device(serial)
            if record is None:
                return None
            before = history.snapshot(record)
            if change(record) is False:
                return None
            try:
                self.save_device(record, history.change_event(before, record))
                return record
            except ConcurrencyConflict:
                continue
        raise ConcurrencyConflict(serial)

    def get_devices(self, serials: Iterable[str]) -> dict[str, DeviceRecord]:
        """Many devices by serial, without hashes or history (as lists read them): 14 per storage call
        instead of one each. Keyed by row key; a serial with no device is absent."""
        keys = sorted({row_key(s) for s in serials})
        found: dict[str, DeviceRecord] = {}
        for start in range(0, len(keys), KEYS_PER_QUERY):
            chunk = keys[start : start + KEYS_PER_QUERY]
            names = {f"k{n}": key for n, key in enumerate(chunk)}
            rows = " or ".join(f"RowKey eq @{name}" for name in names)
            for record in self.query_devices(f"PartitionKey eq '{DEVICES_PARTITION}' and ( {rows} )", **names):
                found[record.key] = record
        return found

    def update_devices(
        self, records: Iterable[DeviceRecord], change: Callable[[DeviceRecord], object]
    ) -> dict[str, DeviceRecord]:
        """Apply ``change`` to devices already read (by a list query or :meth:`get_devices`) and save them,
        100 to an entity-group transaction, each merged on the ETag it was read with, its history event in
        the same write. A transaction fails as a whole when any of its devices changed since it was read;
        then that chunk goes device by device through :meth:`update_device` (read again, re-apply).
        Returns the saved records by row key; ``change`` returning False means "nothing to do" (not saved).
        ``change`` must decide from the record alone, as with :meth:`update_device`: it may run twice."""
        todo: list[tuple[DeviceRecord, tuple[str, str] | None]] = []
        for record in records:
            before = history.snapshot(record)
            if change(record) is False:
                continue
            record.updated = now_iso()
            todo.append((record, history.change_event(before, record)))
        saved: dict[str, DeviceRecord] = {}
        for start in range(0, len(todo), TRANSACTION_LIMIT):
            chunk = todo[start : start + TRANSACTION_LIMIT]
            operations = [
                (
                    "update",
                    record.merge_entity(event),
                    {"mode": UpdateMode.MERGE, "etag": record.etag, "match_condition": MatchConditions.IfNotModified},
                )
                for record, event in chunk
            ]
            try:
                results = self.devices.submit_transaction(operations)
            except (TableTransactionError, ResourceModifiedError, ResourceNotFoundError):
                for record, _ in chunk:  # someone changed one of them: decide again on fresh records
                    fresh = self.update_device(record.serial, change)
                    if fresh is not None:
                        saved[fresh.key] = fresh
                continue
            for (record, event), meta in zip(chunk, results, strict=True):
                record.etag = meta.get("etag")
                if event and not record.listed:
                    record.events[event[0]] = event[1]
                saved[record.key] = record
            self._index([record for record, _ in chunk])
        return saved

    def all_devices(self) -> Iterator[DeviceRecord]:
        yield from self.query_devices(f"PartitionKey eq '{DEVICES_PARTITION}'")

    def query_devices(self, filter: str, **parameters: Any) -> Iterator[DeviceRecord]:
        """Devices matching an OData filter, without their hashes (list queries never move 4 KB per device)."""
        entities = self.devices.query_entities(filter, parameters=parameters or None, select=_LIST_FIELDS)
        for entity in entities:
            record = DeviceRecord.from_entity(entity)
            record.listed = True
            yield record

    def registration_waiting(self) -> bool:
        """Is any device Queued or Importing? Stops at the first match (a scan like the re-drive's)."""
        query = self.devices.query_entities(
            f"PartitionKey eq '{DEVICES_PARTITION}' and ( state eq @queued or state eq @importing )",
            parameters={"queued": DeviceState.QUEUED.value, "importing": DeviceState.IMPORTING.value},
            select=["RowKey"],
            results_per_page=1,
        )
        return next(iter(query), None) is not None

    def devices_waiting_since(self, before: str) -> Iterator[DeviceRecord]:
        """Devices still Queued or Importing, untouched since ``before`` (ISO): their message may be lost."""
        yield from self.query_devices(
            f"PartitionKey eq '{DEVICES_PARTITION}' and ( state eq @queued or state eq @importing ) and updated lt @before",
            queued=DeviceState.QUEUED.value,
            importing=DeviceState.IMPORTING.value,
            before=before,
        )

    # -- the polling index: the timer's cost grows with pending work, not with total devices ----------------
    def _mark_pending(self, record: DeviceRecord) -> None:
        self.devices.upsert_entity({"PartitionKey": PENDING_PARTITION, "RowKey": record.key, "serial": record.serial})

    def unmark_pending(self, record: DeviceRecord) -> None:
        try:
            self.devices.delete_entity(PENDING_PARTITION, record.key)
        except ResourceNotFoundError:
            pass

    def pending_serials(self) -> list[str]:
        return [e["serial"] for e in self.devices.query_entities(f"PartitionKey eq '{PENDING_PARTITION}'")]

    # -- processed import records still to delete from Graph (paced by the write budget) -------------------
    def add_cleanup(self, import_ids: Iterable[str]) -> None:
        """One entity-group transaction per 100 ids (one partition): a storage call per 100, not per id."""
        ids = sorted(set(import_ids))
        for start in range(0, len(ids), 100):
            operations = [
                ("upsert", {"PartitionKey": CLEANUP_PARTITION, "RowKey": i}) for i in ids[start : start + 100]
            ]
            self.devices.submit_transaction(operations)

    def cleanup_ids(self, limit: int) -> list[str]:
        entities = self.devices.query_entities(f"PartitionKey eq '{CLEANUP_PARTITION}'", results_per_page=limit)
        ids = []
        for entity in entities:
            ids.append(entity["RowKey"])
            if len(ids) >= limit:
                break
        return ids

    def done_cleanups(self, import_ids: list[str]) -> None:
        """Forget deleted import records, 100 per transaction; a transaction fails as a whole when one entity
        is already gone (another instance forgot it): then one by one."""
        for start in range(0, len(import_ids), 100):
            chunk = import_ids[start : start + 100]
            try:
                self.devices.submit_transaction([("delete", {"PartitionKey": CLEANUP_PARTITION, "RowKey": i}) for i in chunk])
            except (TableTransactionError, ResourceNotFoundError):
                for import_id in chunk:
                    self.done_cleanup(import_id)

    def done_cleanup(self, import_id: str) -> None:
        try:
            self.devices.delete_entity(CLEANUP_PARTITION, import_id)
        except ResourceNotFoundError:
            pass

    # -- registration messages that could not be read: completed (one must not fail its batch), kept here ----
    def record_bad_message(self, message_id: str, reason: str) -> None:
        self.devices.upsert_entity(
            {"PartitionKey": BAD_MESSAGE_PARTITION, "RowKey": quote(message_id, safe="") or "-", "reason": reason}
        )

    def bad_messages(self) -> list[dict[str, Any]]:
        return [dict(e) for e in self.devices.query_entities(f"PartitionKey eq '{BAD_MESSAGE_PARTITION}'")]

    # -- small run-to-run facts (last Autopilot sync) ----------------------------------------------------------
    def get_meta(self, name: str) -> dict[str, Any]:
        try:
            return dict(self.devices.get_entity(META_PARTITION, name))
        except ResourceNotFoundError:
            return {}

    def put_meta(self, name: str, values: dict[str, Any]) -> None:
        self.devices.upsert_entity({"PartitionKey": META_PARTITION, "RowKey": name, **values})

    # -- uploads and their rows -------------------------------------------------------------------------------
    def get_upload(self, upload_id: str) -> UploadRecord | None:
        try:
            return UploadRecord.from_entity(self.uploads.get_entity(UPLOADS_PARTITION, upload_id))
        except ResourceNotFoundError:
            return None

    def put_upload(self, record: UploadRecord) -> None:
        record.updated = now_iso()
        self.uploads.upsert_entity(record.to_entity(), mode=UpdateMode.REPLACE)

    def set_latest_upload(self, container: str, blob_name: str, upload_id: str) -> None:
        """Which upload a name's by-name report shows (a name can be uploaded again with other content)."""
        entity = {"PartitionKey": LATEST_PARTITION, "RowKey": _name_key(container, blob_name), "uploadId": upload_id}
        self.uploads.upsert_entity(entity)

    def latest_upload(self, container: str, blob_name: str) -> str | None:
        try:
            entity = self.uploads.get_entity(LATEST_PARTITION, _name_key(container, blob_name))
        except ResourceNotFoundError:
            return None
        return entity["uploadId"]

    def all_uploads(self) -> Iterator[UploadRecord]:
        for entity in self.uploads.query_entities(f"PartitionKey eq '{UPLOADS_PARTITION}'"):
            yield UploadRecord.from_entity(entity)

    def put_rows(self, upload_id: str, outcomes: Iterable[RowOutcome]) -> None:
        """Row outcomes in chunks: one entity holds as many rows as fit in ~30,000 characters of JSON (about
        200), so 100,000 rows are ~500 plain upserts, not 100,000 entities (or 1,000 multipart
        transactions, which cost the SDK more CPU than the network). Re-running replaces the chunks and
        removes any left from an earlier run."""
        written: set[str] = set()
        chunk: list[list[Any]] = []
        size = 0
        for outcome in outcomes:
            item = [outcome.line, outcome.serial, outcome.outcome, outcome.code, outcome.message]
            length = len(json.dumps(item))
            if chunk and size + length > _ROWS_PER_ENTITY_CHARS:
                written.add(self._put_chunk(upload_id, chunk))
                chunk, size = [], 0
            chunk.append(item)
            size += length + 1
        if chunk:
            written.add(self._put_chunk(upload_id, chunk))
        for entity in self.rows.query_entities("PartitionKey eq @u", parameters={"u": upload_id}, select=["RowKey"]):
            if entity["RowKey"] not in written:
                self.rows.delete_entity(upload_id, entity["RowKey"])

    def _put_chunk(self, upload_id: str, chunk: list[list[Any]]) -> str:
        entity = {"PartitionKey": upload_id, "RowKey": f"c{chunk[0][0]:010d}", "rows": json.dumps(chunk)}
        self.rows.upsert_entity(entity, mode=UpdateMode.REPLACE)
        return entity["RowKey"]

    def rows_of(self, upload_id: str) -> list[RowOutcome]:
        rows: dict[int, RowOutcome] = {}
        for entity in self.rows.query_entities("PartitionKey eq @u", parameters={"u": upload_id}):
            if "rows" in entity:
                for line, serial, outcome, code, message in json.loads(entity["rows"]):
                    rows[line] = RowOutcome(line, serial, outcome, code, message)
            else:  # one entity per row, as written before chunks
                e = entity
                rows[e["line"]] = RowOutcome(
                    e["line"], e["serial"], e["outcome"], e.get("code", ""), e.get("message", "")
                )
        return [rows[line] for line in sorted(rows)]
