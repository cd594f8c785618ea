"""Timer trigger: sweep for uploads the blob trigger missed, poll pending imports, keep the fleet as its
profiles say, refresh reports."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import azure.functions as func

from functions import ingest
from shared.fleet import FleetSummary, reconcile_fleet
from shared.reconcile import ReconcileSummary, delete_processed_imports, reconcile_imports
from shared.redrive import RedriveSummary, redrive_stuck
from shared.report_refresh import refresh_reports
from shared.runtime import Runtime, runtime
from shared.state import now_iso
from shared.storage import queue_service
from shared.sweep import SweepSummary, sweep_uploads


@dataclass(slots=True)
class ReconcileRun:
    imports: ReconcileSummary
    fleet: FleetSummary
    redrive: RedriveSummary
    sweep: SweepSummary | None = None


async def main(timer: func.TimerRequest, rt: Runtime | None = None) -> ReconcileRun:
    rt = rt or runtime()
    settings = rt.settings
    started = now_iso()
    # First, uploads whose blob-trigger event never ran (dropped, dead-lettered, host down): O(new events).
    sweep = sweep_uploads(settings, rt.blobs, queue_service(settings), rt.store, lambda client: ingest.main(client, rt))
    # Devices change outside this run too (register failing one, an admin's retry): their uploads'
    # reports must show it, so every upload with a device changed since the last refresh is refreshed.
    since = rt.store.get_meta("reports").get("refreshedAt", "0")
    changed_elsewhere = {
        d.upload_id for d in rt.store.query_devices("PartitionKey eq 'device' and updated ge @since", since=since)
    }
    redrive = redrive_stuck(rt.store, rt.sender, settings.tenant_id, settings.duplicate_window_seconds)
    imports = await reconcile_imports(rt.store, rt.graph)
    fleet = await reconcile_fleet(
        rt.store,
        rt.graph,
        rt.directory,
        rt.settings.profiles,
        newly_registered=imports.registered,
        licences=rt.licences,
        full_check_every=timedelta(seconds=settings.fleet_check_seconds),
        just_registered=imports.registered_keys,
    )
    # Membership before clean-up: deleting processed import records is the least urgent write.
    imports.deleted_imports = await delete_processed_imports(rt.store, rt.graph, settings.cleanup_seconds)
    changed = fleet.changed_uploads | imports.changed_uploads | (redrive.changed_uploads or set()) | changed_elsewhere
    if changed or imports.registered or imports.failed:
        refresh_reports(
            rt.store,
            rt.write_report,
            changed,
            sorted(rt.settings.profiles.partners),
            exports=fleet.full_check,
            devices_known=fleet.devices,
        )
        rt.store.put_meta("reports", {"refreshedAt": started})
    return ReconcileRun(imports, fleet, redrive, sweep)
