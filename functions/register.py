"""Service Bus trigger (batch, auto-complete): register a batch of queued devices.

Returning completes the whole batch, raising abandons all of it (docs/functions-host.md), so per-device
outcomes are settled inside ``register_batch`` and never raise; only infrastructure faults propagate.
"""

from __future__ import annotations

import logging
import typing
from collections import Counter

import azure.functions as func

from shared.queue import Delivery
from shared.register import DeviceOutcome, RegisterContext, RetryPolicy, register_batch
from shared.runtime import Runtime, runtime

log = logging.getLogger("registrar.register")


def deliveries(messages: typing.Sequence[func.ServiceBusMessage]) -> list[Delivery]:
    return [
        Delivery(
            body=m.get_body().decode("utf-8", "replace"),
            message_id=m.message_id or "",
            delivery_count=m.delivery_count or 1,
        )
        for m in messages
    ]


def context(rt: Runtime) -> RegisterContext:
    policy = RetryPolicy.for_lock(rt.settings.lock_duration_seconds, rt.settings.max_attempts)
    return RegisterContext(rt.store, rt.graph, rt.sender, policy)


async def main(messages: typing.Sequence[func.ServiceBusMessage], rt: Runtime | None = None) -> list[DeviceOutcome]:
    rt = rt or runtime()
    outcomes = await register_batch(deliveries(messages), context(rt))
    log.info("batch settled", extra={"outcomes": dict(Counter(o.result for o in outcomes))})
    return outcomes
