"""Builders for CSV uploads in the shapes real tools write."""

from __future__ import annotations

import io

from registrar.synthetic import PORTAL_HEADER, build_hash
from shared.intake import DeviceRow, FileRejected, Rejection, open_devices


def csv_bytes(
    rows: list[list[str]],
    *,
    header: list[str] | None = PORTAL_HEADER,
    delimiter: str = ",",
    newline: str = "\r\n",
    encoding: str = "utf-8",
    quote: bool = False,
) -> bytes:
    lines = ([header] if header else []) + rows

    def cell(value: str) -> str:
        return '"' + value.replace('"', '""') + '"' if quote else value

    text = newline.join(delimiter.join(cell(c) for c in line) for line in lines) + newline
    return text.encode(encoding)


def portal_row(
    serial: str, *, hash_serial: str | None = None, group_tag: str = "", user: str = "", product_key: str = ""
) -> list[str]:
    return [serial, product_key, build_hash(hash_serial or serial), group_tag, user]


def read(data: bytes, file: str = "upload.csv") -> list[DeviceRow | Rejection]:
    return list(open_devices(io.BytesIO(data), file))


def read_one(data: bytes, file: str = "upload.csv") -> DeviceRow | Rejection:
    (outcome,) = read(data, file)
    return outcome


def file_error(data: bytes, file: str = "upload.csv") -> FileRejected:
    try:
        list(open_devices(io.BytesIO(data), file))
    except FileRejected as error:
        return error
    raise AssertionError("file was accepted")


def queued_messages(host, delivery_count: int = 1) -> list:
    """The visible registration messages on the local queue, as the trigger would hand them over (peeked:
    they stay on the queue)."""
    from datetime import UTC, datetime

    from azure.functions.servicebus import ServiceBusMessage

    return [
        ServiceBusMessage(
            body=envelope["body"].encode("utf-8"),
            message_id=envelope["messageId"],
            delivery_count=delivery_count,
            content_type="application/json",
            enqueued_time_utc=datetime.now(UTC),
            application_properties={},
            user_properties={},
            trigger_metadata={},
        )
        for envelope in host.bus.peek()
    ]
