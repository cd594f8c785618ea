"""Settings of one emulated tenant: timings, budgets and faults. Tests shrink them; demos speed them up."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any


def _product_grants() -> frozenset[str]:
    from .permissions import PRODUCT_GRANTS

    return PRODUCT_GRANTS


@dataclass(slots=True)
class ThrottleConfig:
    """Intune's documented budgets for enrollment resources (``/deviceManagement``), per 20 s window, and
    Entra ID's, kept apart as Graph keeps them (autopilot-graph-facts.md, Throttling; Microsoft Graph
    "throttling-limits": Entra ID is limited per app and tenant in resource units per 10 s, each request
    charged its documented cost, and in writes, 3,000 per 2 min 30 s). Each is a sliding window
    (``throttle.py``). Intune's published tables name enrollment resources such as
    deviceEnrollmentConfiguration, not the Autopilot ones: their limits are the nearest documented ones."""

    enabled: bool = True
    window_seconds: float = 20.0
    app_writes: int = 100
    tenant_writes: int = 200
    app_requests: int = 1000
    tenant_requests: int = 2000
    entra_window_seconds: float = 150.0
    entra_app_writes: int = 3000
    entra_tenant_window_seconds: float = 300.0
    entra_tenant_writes: int = 18000  # "tenant | Not Applicable | 18,000 requests per 5 minutes" (every app)
    entra_requests_window_seconds: float = 10.0
    entra_app_requests: int = 3500
    # Intune's 429s often carry no Retry-After header and "RetryAfter": null inside the error message
    # (autopilot-graph-facts.md, Throttling), although Graph's throttling page promises the header. The
    # strict reading is the default: /deviceManagement 429s come without it. True: with it.
    intune_retry_after: bool = False
    # A $batch with a throttled item answers 424 as a whole (learn.microsoft.com/graph/throttling, "Throttling
    # and batching"), its items in the body; False: 200, as json-batching describes a parseable batch.
    batch_424_when_throttled: bool = True


@dataclass(slots=True)
class FaultConfig:
    """Injected, seeded failures on Graph paths (never on ``/_emulator``)."""

    seed: int = 0
    rate_500: float = 0.0
    rate_503: float = 0.0
    rate_504: float = 0.0
    drop_rate: float = 0.0
    latency_ms: float = 0.0
    # A write (POST/PATCH/DELETE) that was APPLIED, answered 503 or 504 all the same: a blind retry of a
    # POST would apply it twice (autopilot-graph-facts.md: kiota retries 503/504 for every method).
    rate_5xx_after_write: float = 0.0
    # Sporadic 412 ConditionNotMet on updates (updateDeviceProperties), the update NOT applied.
    rate_412: float = 0.0
    # 429 below every limit ("It's possible to receive 429 ... even when the following limits aren't
    # reached": throttling-limits), the request NOT applied; also inside a $batch, item by item.
    rate_429: float = 0.0


@dataclass(slots=True)
class EmulatorConfig:
    tenant_id: str = "00000000-0000-4000-8000-00000000c0de"
    import_processing_seconds: float = 5.0  # real imports take minutes
    entra_delay_seconds: float = 5.0  # the Entra device object appears after the Autopilot record
    sync_cooldown_seconds: float = 600.0
    sync_duration_seconds: float = 60.0
    page_size: int = 100
    # Eventual consistency, as users report it (autopilot-graph-facts.md, Timing): the Autopilot record is
    # listed this long after its import says `complete`; an updateDeviceProperties change shows in reads
    # (and in the Entra [OrderId] physical id) this long after the 204.
    autopilot_listing_delay_seconds: float = 0.0
    property_read_delay_seconds: float = 0.0
    # Removing a non-member answers 404 or 400 (both documented by users; both mean "already done").
    remove_nonmember_status: int = 404
    throttle: ThrottleConfig = field(default_factory=ThrottleConfig)
    faults: FaultConfig = field(default_factory=FaultConfig)
    # Application permissions (roles) per bearer token. The product's development token has exactly what
    # infra grants in Azure; any other token (tests' scene setting, the anchors) has every permission.
    app_roles: dict[str, list[str]] = field(
        default_factory=lambda: {"dev.autopilot-registrar-dev": sorted(_product_grants())}
    )
    # Bearer tokens that stand for a signed-in user (delegated permissions); every other token is an
    # application's (app-only, as the product's managed identity is). Only these may call the routes whose
    # api-reference says Application "Not supported" (permissions.APP_ONLY_UNSUPPORTED).
    delegated_tokens: list[str] = field(default_factory=list)

    def update(self, values: dict[str, Any]) -> None:
        """Apply a partial update (the control API's ``PATCH /_emulator/config``)."""
        for key, value in values.items():
            current = getattr(self, key, None)
            if key in ("throttle", "faults") and isinstance(value, dict):
                names = {f.name for f in fields(current)}
                for sub_key, sub_value in value.items():
                    if sub_key not in names:
                        raise ValueError(f"unknown setting {key}.{sub_key}")
                    setattr(current, sub_key, type(getattr(current, sub_key))(sub_value))
            elif key in {f.name for f in fields(self)} and key not in ("throttle", "faults"):
                setattr(self, key, type(current)(value))
            else:
                raise ValueError(f"unknown setting {key}")

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = (
                {s.name: getattr(value, s.name) for s in fields(value)} if f.name in ("throttle", "faults") else value
            )
        return out
