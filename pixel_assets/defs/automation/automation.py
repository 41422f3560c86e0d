"""Operations (SPEC §8): the data-compilation job, its nightly schedule, and the source sensor.

Only data assets are selected: training assets are never re-run by a schedule or a sensor.
"""

from datetime import datetime, timezone

import dagster as dg

from pixel_assets.defs.storage.resources import DataRootResource
from pixel_assets.lib.storage import LocalDataRoot, S3DataRoot

DATA_GROUPS = ("ingest", "pii", "dedup", "splits", "compiled", "reports")
SOURCES_PREFIX = "sources/"

compile_dataset_job = dg.define_asset_job(
    "compile_dataset",
    selection=dg.AssetSelection.groups(*DATA_GROUPS),
    description="Re-compile the dataset: ingest -> PII -> dedup -> splits -> compiled dataset + gates.",
    tags={"pixel/kind": "data"},
)

nightly_compile_schedule = dg.ScheduleDefinition(
    name="nightly_compile",
    job=compile_dataset_job,
    cron_schedule="0 2 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Re-compile the dataset every night at 02:00 UTC.",
)


def changed_sources(root, since: float) -> tuple[list[str], float]:
    """Source keys modified after `since` (epoch seconds) and the newest modification time seen.

    S3 roots are listed with dagster-aws's get_objects; local roots by file mtime.
    """
    newest = since
    changed: list[str] = []
    if isinstance(root, S3DataRoot):
        from dagster_aws.s3.sensor import get_objects

        prefix = f"{root.prefix}/{SOURCES_PREFIX}" if root.prefix else SOURCES_PREFIX
        after = datetime.fromtimestamp(since, tz=timezone.utc) if since else None
        for obj in get_objects(root.bucket, prefix, since_last_modified=after, client=root.client):
            changed.append(obj["Key"])
            newest = max(newest, obj["LastModified"].timestamp())
    elif isinstance(root, LocalDataRoot):
        for key in root.list_keys(SOURCES_PREFIX):
            mtime = root.local_path(key).stat().st_mtime
            if mtime > since:
                changed.append(key)
                newest = max(newest, mtime)
    return sorted(changed), newest


@dg.sensor(
    job=compile_dataset_job,
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Re-compile when source objects under the data root's sources/ are new or changed.",
)
def source_change_sensor(context: dg.SensorEvaluationContext, data_root: DataRootResource):
    since = float(context.cursor) if context.cursor else 0.0
    changed, newest = changed_sources(data_root.root(), since)
    if not changed:
        return dg.SkipReason(f"no new or changed source objects since {since:.0f}")
    context.update_cursor(str(newest))
    context.log.info(f"{len(changed)} new or changed source objects")
    return dg.RunRequest(run_key=f"sources-{newest:.6f}", tags={"pixel/trigger": "source_change"})
