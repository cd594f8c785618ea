"""The write budget shared by instances through one table entity (real Azurite): an instance that decides
on what it last wrote never grants past the limit when another instance granted in between."""

from __future__ import annotations

import uuid

from shared.budget import BudgetLimit, WriteBudget
from shared.storage import table_service


def test_an_instance_deciding_on_its_last_write_still_sees_the_other_instances_grants(settings):
    table = table_service(settings).create_table_if_not_exists(f"budget{uuid.uuid4().hex[:10]}")
    limit = BudgetLimit("intune", 10, 20.0)
    first, second = WriteBudget(table, limit), WriteBudget(table, limit)
    assert first.try_acquire(6) == 0.0
    assert second.try_acquire(3) == 0.0  # 9 of 10 used, written after first's last look
    assert first.try_acquire(2) > 0  # first's own copy says 6: the ETag tells it otherwise
    assert first.try_acquire(1) == 0.0 and second.try_acquire(1) > 0  # exactly 10, never 11


def test_background_writes_leave_their_reserve_to_registration(settings):
    table = table_service(settings).create_table_if_not_exists(f"budget{uuid.uuid4().hex[:10]}")
    budget = WriteBudget(table, BudgetLimit("intune", 10, 20.0))
    assert budget.try_acquire(6, reserve=2) == 0.0  # clean-up takes what it may, up to 8 of 10
    assert budget.try_acquire(3, reserve=2) > 0  # 9 would leave less than its reserve
    assert budget.try_acquire(4) == 0.0  # an import gets the rest at once
