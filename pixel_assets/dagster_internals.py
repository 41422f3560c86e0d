"""The Dagster internals this project cannot do without, in one place, checked against
dagster 1.13.27 (DAGSTER_VERSION_CHECKED; a test fails on another minor version, so an upgrade
re-reads this module and reruns test_training_chain, test_training_guard and
test_launcher_routing).

None of these has a public equivalent in that version:
- RunLauncher and its context/result types, ConfigurableClass(Data): the routing run launcher
  (launchers/routing.py) is a custom launcher, which Dagster's docs describe only under
  "Internals".
- CachingStaleStatusResolver and the AssetGraphView it reads through: the stale status the UI
  shows, which `train_stale_stages` needs to choose the first stale stage. The public
  `RunRequest(stale_assets_only=True)` filters a selection later, in the daemon, and cannot say
  whether to request at all or where the chain must restart.
- AssetCheckExecutionRecordStatus: whether the latest execution of a gate check finished.
- extract_data_version_from_entry: the data version of a materialization or observation.
"""

from __future__ import annotations

from datetime import datetime, timezone

import dagster as dg
from dagster._core.asset_graph_view.asset_graph_view import AssetGraphView
from dagster._core.definitions.data_version import CachingStaleStatusResolver, extract_data_version_from_entry
from dagster._core.definitions.temporal_context import TemporalContext
from dagster._core.launcher import (
    CheckRunHealthResult,
    LaunchRunContext,
    ResumeRunContext,
    RunLauncher,
    WorkerStatus,
)
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dagster._serdes import ConfigurableClass, ConfigurableClassData

DAGSTER_VERSION_CHECKED = "1.13.27"

__all__ = [
    "DAGSTER_VERSION_CHECKED", "AssetCheckExecutionRecordStatus", "CheckRunHealthResult", "ConfigurableClass",
    "ConfigurableClassData", "LaunchRunContext", "ResumeRunContext", "RunLauncher", "WorkerStatus",
    "latest_data_version", "stale_status",
]


def stale_status(instance: dg.DagsterInstance, asset_graph, keys: list[dg.AssetKey]) -> dict[dg.AssetKey, str]:
    """key -> FRESH | STALE | MISSING, as the UI shows it now. The resolver reads through an
    AssetGraphView pinned to the latest event (Dagster's own loading context for a view of the
    graph at one moment), not through a test helper."""
    view = AssetGraphView(
        temporal_context=TemporalContext(effective_dt=datetime.now(timezone.utc),
                                         last_event_id=instance.event_log_storage.get_maximum_record_id()),
        instance=instance, asset_graph=asset_graph)
    resolver = CachingStaleStatusResolver(instance, asset_graph, view)
    return {key: resolver.get_status(key).value for key in keys}


def latest_data_version(instance: dg.DagsterInstance, key: dg.AssetKey) -> str | None:
    """The data version of the latest materialization (or observation) of ``key``; None when
    there is none."""
    record = instance.get_latest_data_version_record(key)
    if record is None:
        return None
    version = extract_data_version_from_entry(record.event_log_entry)
    return version.value if version else None
