"""Where an upload came from decides what it may do: container -> admin or partner, path -> profile.

Admins upload to ``device-uploads/<profile>/<name>.csv``; partner ``X`` to ``partner-X/<profile>/<name>.csv``.
Blob names are attacker-controlled for partners, so anything but a plain two-segment path is refused.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from .config import ADMIN_CONTAINER, PARTNER_CONTAINER_PREFIX, REPORTS_PREFIX, ProfilesDocument

MAX_BLOB_NAME = 512
# A folder or file name: a letter or digit, then letters, digits and these (written once: the refusal lists them).
_NAME_PUNCTUATION = " ._()-"
_SEGMENT = re.compile(f"[A-Za-z0-9][A-Za-z0-9{re.escape(_NAME_PUNCTUATION)}]*")


@dataclass(frozen=True, slots=True)
class UploadTarget:
    container: str
    blob_name: str
    profile: str
    partner: str | None


class UploadRejected(ValueError):
    """The whole upload is refused (unknown profile, partner not allowed, unsafe name)."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def is_report(blob_name: str) -> bool:
    """Our own reports live in the upload containers; they must never be ingested."""
    return blob_name.startswith(REPORTS_PREFIX)


def route(container: str, blob_name: str, profiles: ProfilesDocument) -> UploadTarget:
    partner: str | None = None
    if container == ADMIN_CONTAINER:
        allowed = set(profiles.profiles)
    elif (
        container.startswith(PARTNER_CONTAINER_PREFIX)
        and container[len(PARTNER_CONTAINER_PREFIX) :] in profiles.partners
    ):
        partner = container[len(PARTNER_CONTAINER_PREFIX) :]
        allowed = set(profiles.partners[partner].profiles)
    else:
        raise UploadRejected("upload.unknown_container", f"container {container!r} is not an upload area")
    _check_name(blob_name)
    profile, _, _ = blob_name.partition("/")
    if profile not in profiles.profiles:
        known = ", ".join(sorted(allowed))
        raise UploadRejected(
            "upload.unknown_profile",
            f"profile {profile!r} does not exist: upload to <profile>/<file>.csv, one of: {known}",
        )
    if profile not in allowed:
        raise UploadRejected(
            "upload.profile_not_allowed", f"partner {partner!r} may not register devices to profile {profile!r}"
        )
    return UploadTarget(container, blob_name, profile, partner)


def _check_name(blob_name: str) -> None:
    if len(blob_name) > MAX_BLOB_NAME:
        raise UploadRejected(
            "upload.bad_name", f"the file name is {len(blob_name)} characters; the limit is {MAX_BLOB_NAME}"
        )
    if unicodedata.normalize("NFKC", blob_name) != blob_name or not blob_name.isascii():
        raise UploadRejected("upload.bad_name", "the file name must be plain ASCII (no look-alike characters)")
    lowered = blob_name.lower()
    if "%" in blob_name or "\\" in blob_name or ".." in blob_name or lowered.startswith("/"):
        raise UploadRejected("upload.bad_name", "the file name must not contain '..', '%', '\\\\' or start with '/'")
    segments = blob_name.split("/")
    if len(segments) != 2:
        raise UploadRejected("upload.bad_name", "upload to <profile>/<file>.csv (one folder: the profile name)")
    if not all(_SEGMENT.fullmatch(s) for s in segments):
        odd = sorted({c for c in blob_name if not (c.isalnum() or c in _NAME_PUNCTUATION + "/")})
        shown = " ".join(repr(c) for c in odd) if odd else "a part that does not start with a letter or digit"
        listed = " ".join("space" if c == " " else c for c in _NAME_PUNCTUATION)
        raise UploadRejected(
            "upload.bad_name",
            f"rename the file: {shown} cannot be used in a file name here (letters, digits, {listed} only)",
        )
    if not lowered.endswith(".csv"):
        raise UploadRejected("upload.bad_name", "only .csv files are processed")
