"""The registration message: what ingest puts on the queue and register takes off it.

The body is versioned JSON. ``message_id`` is a hash of (tenant, serial, hash, upload, generation): one
*attempt* at registering a device. Sending the same attempt twice (an ingest interrupted after its send)
is a true duplicate, and Service Bus duplicate detection drops the copy. A new attempt (a retry after
Graph throttled, a replay, a re-upload, a re-drive by the timer) raises the device's ``generation`` and
so gets a new MessageId: Service Bus would otherwise drop it silently for the whole detection window
(https://learn.microsoft.com/azure/service-bus-messaging/duplicate-detection: "the newly sent message is
instantly ignored and dropped"). Register ignores a message whose generation is not the device's current
one, so an old attempt still in the queue never registers twice.
"""

from __future__ import annotations

import hashlib
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1


class RegistrationMessage(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    schema_version: Literal[1] = Field(default=SCHEMA_VERSION, alias="schemaVersion")
    tenant: str
    serial: str
    profile: str
    partner: str = ""
    group_tag: str = Field(alias="groupTag")
    hardware_hash: str = Field(alias="hardwareHash", repr=False)
    hash_digest: str = Field(alias="hashDigest")
    product_key: str = Field(default="", alias="productKey")
    assigned_user: str = Field(default="", alias="assignedUser")
    upload_id: str = Field(alias="uploadId")
    file: str
    line: int
    generation: int = 0  # the device's attempt generation this message belongs to

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> RegistrationMessage:
        return cls.model_validate_json(text)

    @property
    def message_id(self) -> str:
        return message_id(self.tenant, self.serial, self.hash_digest, self.upload_id, self.generation)

    @property
    def fingerprint(self) -> str:
        return self.hash_digest[:12]


    def next_attempt(self, generation: int) -> RegistrationMessage:
        return self.model_copy(update={"generation": generation})


def message_id(tenant: str, serial: str, hash_digest: str, upload_id: str, generation: int) -> str:
    from .intake.model import serial_key

    key = f"{tenant}|{serial_key(serial)}|{hash_digest}|{upload_id}|{generation}"
    return hashlib.sha256(key.encode()).hexdigest()[:32]
