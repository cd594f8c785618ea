"""The registration message: what ingest puts on the queue and register takes off it.

The body is versioned JSON. ``message_id`` is a hash of (tenant, serial, hash) so Service Bus duplicate
detection drops a re-upload of the same device, and a redelivered message is recognised as the same work.
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

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> RegistrationMessage:
        return cls.model_validate_json(text)

    @property
    def message_id(self) -> str:
        return message_id(self.tenant, self.serial, self.hash_digest)

    @property
    def fingerprint(self) -> str:
        return self.hash_digest[:12]


def message_id(tenant: str, serial: str, hash_digest: str) -> str:
    from .intake.model import serial_key

    return hashlib.sha256(f"{tenant}|{serial_key(serial)}|{hash_digest}".encode()).hexdigest()[:32]
