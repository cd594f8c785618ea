"""Timer trigger: poll pending imports and move devices on."""

from __future__ import annotations

import azure.functions as func

from shared.reconcile import ReconcileSummary, delete_processed_imports, reconcile_imports
from shared.runtime import Runtime, runtime


async def main(timer: func.TimerRequest, rt: Runtime | None = None) -> ReconcileSummary:
    rt = rt or runtime()
    summary = await reconcile_imports(rt.store, rt.graph)
    summary.deleted_imports = await delete_processed_imports(rt.store, rt.graph)
    return summary
