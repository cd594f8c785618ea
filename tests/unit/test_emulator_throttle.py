"""The Graph emulator's throttling, as the documented limits read strictly: never more than N in any window,
and a client that retries before Retry-After only waits longer (Graph logs usage while it throttles)."""

from registrar.emulators.graph.config import ThrottleConfig
from registrar.emulators.graph.throttle import Throttle, resource_units


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _throttle(**limits) -> tuple[Throttle, Clock]:
    clock = Clock()
    return Throttle(ThrottleConfig(**limits), clock), clock


def test_no_window_of_the_limit_admits_more_than_the_limit():
    throttle, clock = _throttle(app_writes=100, window_seconds=20)
    admitted: list[float] = []
    while clock.now < 1100:  # a write every 25 ms for 100 s, waiting Retry-After when refused
        wait = throttle.admit("app", write=True)
        if wait is None:
            admitted.append(clock.now)
        clock.now += 0.025 if wait is None else wait
    assert len(admitted) >= 400  # it does get the budget: 100 per 20 s
    for k, start in enumerate(admitted):
        assert sum(1 for t in admitted[k:] if t < start + 20) <= 100


def test_a_client_that_never_waits_stays_throttled():
    throttle, clock = _throttle(app_writes=100, window_seconds=20)
    admitted = 0
    while clock.now < 1100:  # retries every 25 ms whatever the answer: its refused tries count too
        admitted += throttle.admit("app", write=True) is None
        clock.now += 0.025
    assert admitted == 100


def test_a_client_that_waits_retry_after_gets_through_and_one_that_hammers_waits_longer():
    throttle, clock = _throttle(app_writes=3, window_seconds=10)
    for _ in range(3):
        assert throttle.admit("app", write=True) is None
        clock.now += 1
    first_wait = throttle.admit("app", write=True)
    assert first_wait is not None and first_wait > 0
    clock.now += first_wait
    assert throttle.admit("app", write=True) is None  # the patient client

    hammering, clock = _throttle(app_writes=3, window_seconds=10)
    for _ in range(3):
        hammering.admit("app", write=True)
        clock.now += 1
    start, told = clock.now, hammering.admit("app", write=True)
    for _ in range(4):  # retries at once, ignoring Retry-After: each one is charged
        clock.now += 0.5
        assert hammering.admit("app", write=True) is not None
    clock.now = start + told  # when the first answer said it could come back
    assert hammering.admit("app", write=True) is not None  # its own retries pushed the wait out


def test_entra_reads_are_charged_their_resource_units():
    throttle, _ = _throttle(entra_app_requests=5, entra_requests_window_seconds=10)
    members = resource_units("groups.members.list", {})
    assert members == 3
    assert throttle.admit("app", write=False, family="entra", units=members) is None
    assert throttle.admit("app", write=False, family="entra", units=resource_units("devices.list", {})) is None
    assert throttle.admit("app", write=False, family="entra", units=members) is not None  # 1 + 3 + 3 > 5
    assert resource_units("groups.members.list", {"$select": "id", "$top": "999"}) == 2
    assert resource_units("groups.members.list", {"$select": "id", "$top": "5"}) == 1
    assert resource_units("devices.list", {"$select": "id", "$expand": "x"}) == 1


def test_entra_writes_of_every_app_share_the_tenant_quota():
    throttle, _ = _throttle(entra_app_writes=3000, entra_tenant_writes=4)
    for app in ("a", "b"):
        for _ in range(2):
            assert throttle.admit(app, write=True, family="entra") is None
    assert throttle.admit("c", write=True, family="entra") is not None  # a third app: the tenant's 4 are spent
