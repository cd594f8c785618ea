"""Entra and Autopilot-settings calls for reconciliation: device lookup, group members, batched
membership changes, group-tag updates and the Autopilot sync."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from kiota_abstractions.method import Method
from kiota_abstractions.request_information import RequestInformation
from kiota_http.middleware.options import RetryHandlerOption
from msgraph import GraphServiceClient
from msgraph.generated.device_management.windows_autopilot_device_identities.item.update_device_properties.update_device_properties_post_request_body import (  # noqa: E501
    UpdateDevicePropertiesPostRequestBody,
)
from msgraph.generated.models.o_data_errors.o_data_error import ODataError

from .autopilot import GraphRefused, GraphUnavailable, classify, list_raw
from .batch import BATCH_LIMIT, post_batch

# The longest Retry-After a run waits out before sending throttled membership changes again; a longer one
# leaves them to the next run (sending before Retry-After would only be throttled again, and charged).
MAX_ROUND_WAIT = 5.0


def beta_root(base_url: str) -> str:
    """The beta root beside the configured v1.0 root (same host: Graph, a national cloud, the emulator)."""
    root = base_url.rstrip("/")
    return (root[: -len("/v1.0")] if root.endswith("/v1.0") else root) + "/beta"


def _batch_item(item_id: str, change: MembershipChange) -> dict[str, Any]:
    if change.add:
        return {
            "id": item_id,
            "method": "POST",
            "url": f"/groups/{change.group_id}/members/$ref",
            "headers": {"Content-Type": "application/json"},
            "body": {"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{change.object_id}"},
        }
    return {"id": item_id, "method": "DELETE", "url": f"/groups/{change.group_id}/members/{change.object_id}/$ref"}


@dataclass(frozen=True, slots=True)
class GroupInfo:
    id: str
    dynamic: bool


@dataclass(frozen=True, slots=True)
class Member:
    object_id: str
    device_id: str


@dataclass(frozen=True, slots=True)
class ItemResult:
    status: int
    code: str = ""
    message: str = ""

    @property
    def done(self) -> bool:
        """Succeeded, or there was nothing to do: adding a member that is one already ("...already exist..."),
        removing one that is not (404, or 400 "...do not exist...": autopilot-graph-facts.md)."""
        if 200 <= self.status < 300:
            return True
        text = self.message.casefold()
        return (self.status == 400 and ("already exist" in text or "do not exist" in text)) or self.status == 404


@dataclass(frozen=True, slots=True)
class MembershipChange:
    group_id: str
    object_id: str
    add: bool


class DirectoryClient:
    def __init__(self, client: GraphServiceClient, max_batch_writes: int = BATCH_LIMIT) -> None:
        self._client = client
        self._writes_per_batch = max(1, min(BATCH_LIMIT, max_batch_writes))

    async def update_group_tag(self, autopilot_id: str, group_tag: str) -> None:
        builder = self._client.device_management.windows_autopilot_device_identities
        try:
            await builder.by_windows_autopilot_device_identity_id(autopilot_id).update_device_properties.post(
                UpdateDevicePropertiesPostRequestBody(group_tag=group_tag)
            )
        except Exception as error:  # noqa: BLE001
            raise classify(error) from error

    async def find_devices(self, device_ids: list[str]) -> dict[str, str]:
        """Entra object ids for many ``azureActiveDirectoryDeviceId`` values: one ``$batch`` HTTP call per 20
        lookups (``GET /devices?$filter=deviceId eq '...'`` each, the documented filter). Devices not visible
        yet (eventual consistency) or whose item was throttled are absent: the next run asks again."""
        found: dict[str, str] = {}
        for start in range(0, len(device_ids), BATCH_LIMIT):
            chunk = device_ids[start : start + BATCH_LIMIT]
            requests = [
                {
                    "id": str(index),
                    "method": "GET",
                    "url": "/devices?" + urlencode({"$filter": f"deviceId eq '{device_id}'", "$select": "id,deviceId"}),
                }
                for index, device_id in enumerate(chunk)
            ]
            try:
                answers = await post_batch(self._client, requests)
            except GraphUnavailable:  # the whole call throttled or failed: what was found stands
                break
            throttled = 0
            for index, device_id in enumerate(chunk):
                answer = answers.get(str(index), {})
                if answer.get("status") == 429:
                    throttled += 1
                    continue
                body = answer.get("body") if isinstance(answer.get("body"), dict) else {}
                value = body.get("value") or []
                if answer.get("status") == 200 and value and value[0].get("id"):
                    found[device_id] = str(value[0]["id"])
            if throttled:  # Entra's budget is spent, and throttled tries count against it: the rest waits
                break  # for the next run
        return found

    async def group(self, group_id: str) -> GroupInfo:
        try:
            group = await self._client.groups.by_group_id(group_id).get()
        except Exception as error:  # noqa: BLE001
            raise classify(error) from error
        return GroupInfo(group_id, "DynamicMembership" in (group.group_types or []))

    async def members(self, group_id: str) -> list[Member]:
        """Every member of the group, as JSON (the SDK's objects cost 5 ms a member: 500 s of CPU for a
        100,000-device group), 999 to a page, the most Graph returns."""
        items = await list_raw(self._client, f"/groups/{group_id}/members", "id,deviceId", top=999)
        return [Member(str(item.get("id") or ""), str(item.get("deviceId") or "")) for item in items]

    async def apply_membership(
        self, changes: list[MembershipChange], rounds: int = 2
    ) -> dict[MembershipChange, ItemResult]:
        """JSON $batch, at most 20 changes per request; returns each change's final result (status, code,
        message from the item's own error body, so a report can say why).

        Each batch item is throttled on its own: items answered 429 are sent again after their Retry-After
        (a few rounds; what is still throttled is left for the next run)."""
        results: dict[MembershipChange, ItemResult] = {}
        # Adds first, 20 per PATCH /groups/{id} with members@odata.bind (group-post-members: "up to 20
        # members in one request"): one request and one write for 20 devices. A chunk Graph refuses (one of
        # them already a member, or not visible yet) goes through $batch below, which answers per device.
        pending = [c for c in changes if not c.add]
        for change, result in (await self._bind_members([c for c in changes if c.add])).items():
            if result.status == 400 or result.status == 404:
                pending.append(change)
            else:
                results[change] = result
        for attempt in range(rounds):
            waits = await self._membership_round(pending, results)
            pending = [c for c in pending if results[c].status == 429]
            if not pending or attempt == rounds - 1 or waits > MAX_ROUND_WAIT:
                break  # a longer Retry-After is honoured by leaving the rest to the next run, not cut short
            await asyncio.sleep(max(waits, 1.0))
        return results

    async def _bind_members(self, adds: list[MembershipChange]) -> dict[MembershipChange, ItemResult]:
        by_group: dict[str, list[MembershipChange]] = {}
        for change in adds:
            by_group.setdefault(change.group_id, []).append(change)
        results: dict[MembershipChange, ItemResult] = {}
        chunks = [
            members[start : start + BATCH_LIMIT]
            for members in by_group.values()
            for start in range(0, len(members), BATCH_LIMIT)
        ]  # one PATCH is one write whatever its size (up to Graph's 20)
        for index, chunk in enumerate(chunks):
            adapter = self._client.request_adapter
            info = RequestInformation(Method.PATCH, f"{adapter.base_url}/groups/{chunk[0].group_id}")
            info.headers.try_add("Content-Type", "application/json")
            references = [f"https://graph.microsoft.com/v1.0/directoryObjects/{c.object_id}" for c in chunk]
            info.content = json.dumps({"members@odata.bind": references}).encode()
            info.add_request_options([RetryHandlerOption(max_retries=0)])  # a 5xx may come after it applied
            try:
                await adapter.send_no_response_content_async(info, {"XXX": ODataError})
                outcome = ItemResult(204)
            except Exception as error:  # noqa: BLE001
                classified = classify(error)
                if isinstance(classified, GraphRefused):
                    outcome = ItemResult(classified.status, classified.code, classified.message)
                elif isinstance(classified, GraphUnavailable) and not classified.maybe_applied:
                    # Throttled (or the shared budget spent): this chunk and the rest wait for the next run.
                    for rest in [c for later in chunks[index:] for c in later]:
                        results[rest] = ItemResult(429, "TooManyRequests", "not sent: the budget was spent")
                    return results
                else:
                    raise classified from error
            results.update(dict.fromkeys(chunk, outcome))
        return results

    async def _membership_round(
        self, changes: list[MembershipChange], results: dict[MembershipChange, ItemResult]
    ) -> float:
        longest_wait = 0.0
        size = self._writes_per_batch
        for start in range(0, len(changes), size):
            chunk = changes[start : start + size]
            try:
                answers = await post_batch(
                    self._client, [_batch_item(str(index), change) for index, change in enumerate(chunk)]
                )
            except GraphUnavailable as error:
                if error.maybe_applied:  # a 5xx after the writes may have been applied: the next run reads again
                    raise
                for rest in changes[start:]:  # the call itself was throttled (or the shared budget spent)
                    results[rest] = ItemResult(429, "TooManyRequests", "not sent: the budget was spent")
                return max(longest_wait, error.retry_after or 1.0)
            throttled_in_chunk = 0
            for index, change in enumerate(chunk):
                answer = answers.get(str(index), {})
                error = (answer.get("body") or {}).get("error") or {} if isinstance(answer.get("body"), dict) else {}
                results[change] = ItemResult(
                    int(answer.get("status") or 0), error.get("code", ""), error.get("message", "")
                )
                if results[change].status == 429:
                    throttled_in_chunk += 1
                    headers = {k.lower(): v for k, v in (answer.get("headers") or {}).items()}
                    try:
                        longest_wait = max(longest_wait, float(headers.get("retry-after", 1)))
                    except (TypeError, ValueError):
                        longest_wait = max(longest_wait, 1.0)
            if throttled_in_chunk == len(chunk):  # the budget is spent: stop sending, mark the rest throttled
                for rest in changes[start + size :]:
                    results[rest] = ItemResult(429, "TooManyRequests", "not sent: the budget was spent")
                break
        return longest_wait

    async def sync(self) -> bool:
        """Ask Intune to sync Autopilot devices. False when it says "not now" (409 running, 429 too soon).

        The only beta call: ``windowsAutopilotSettings`` exists in beta, not in v1.0 (Graph's published v1.0
        schema has no such entity set; every public tool calls /beta)."""
        adapter = self._client.request_adapter
        info = RequestInformation(
            Method.POST, f"{beta_root(adapter.base_url)}/deviceManagement/windowsAutopilotSettings/sync"
        )
        info.add_request_options([RetryHandlerOption(max_retries=0)])
        try:
            await adapter.send_no_response_content_async(info, {"XXX": ODataError})
        except Exception as error:  # noqa: BLE001
            classified = classify(error)
            if isinstance(classified, GraphUnavailable) or (
                isinstance(classified, GraphRefused) and classified.status == 409
            ):
                return False
            raise classified from error
        return True
