"""Service Bus trigger: register a batch of queued devices."""

from __future__ import annotations

import azure.functions as func

from shared.queue import MAX_DELIVERY_COUNT, Delivery, Settlement
from shared.register import register_batch
from shared.runtime import Runtime, runtime


class RetryLater(Exception):
    """Raised so the host abandons the batch: Service Bus redelivers it (and dead-letters it at the limit).
    Redelivery is safe: register is idempotent per device."""


def deliveries(messages: list[func.ServiceBusMessage], max_deliveries: int = MAX_DELIVERY_COUNT) -> list[Delivery]:
    return [
        Delivery(
            body=m.get_body().decode("utf-8", "replace"),
            message_id=m.message_id or "",
            delivery_count=m.delivery_count or 1,
            max_deliveries=max_deliveries,
        )
        for m in messages
    ]


async def process(
    messages: list[func.ServiceBusMessage], rt: Runtime, max_deliveries: int = MAX_DELIVERY_COUNT
) -> list[Settlement]:
    return await register_batch(deliveries(messages, max_deliveries), rt.store, rt.graph)


async def main(messages: list[func.ServiceBusMessage], rt: Runtime | None = None) -> None:
    settlements = await process(messages, rt or runtime())
    unfinished = [s for s in settlements if s.action != "complete"]
    if unfinished:
        raise RetryLater(
            f"{len(unfinished)} of {len(settlements)} messages need another delivery: "
            + "; ".join(sorted({s.reason for s in unfinished}))[:500]
        )
