"""Operations (SPEC §8): the data-compilation job, its nightly schedule, and the source sensor.

Only data assets are selected: training assets are never re-run by a schedule or a sensor. Neither
starts a compile while another one is queued or running (two compiles would race on publication
and on the split ledger); production also queues them one at a time (docker/dagster.yaml).
"""

import hashlib
import json
import os

import dagster as dg

from pixel_assets.defs.automation.executors import data_job_executor
from pixel_assets.defs.keys import GROUP_DATA, GROUP_REPORTS, GROUP_VERIFICATION, REGISTRY
from pixel_assets.defs.storage.resources import DataRootResource
from pixel_assets.lib.ingest.loaders import default_s3_client, resolve_source
from pixel_assets.lib.registry import Registry
from pixel_assets.lib.storage import DataRoot, S3DataRoot, glob_matcher, parse_s3_uri

DATA_GROUPS = (GROUP_DATA, GROUP_VERIFICATION, GROUP_REPORTS)
COMPILE_JOB = "compile_dataset"
UNFINISHED = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
              dg.DagsterRunStatus.STARTED]

compile_dataset_job = dg.define_asset_job(
    COMPILE_JOB,
    selection=dg.AssetSelection.groups(*DATA_GROUPS),
    description="Re-compile the dataset: ingest -> PII -> dedup -> splits -> compiled dataset + gates.",
    tags={"pixel/kind": "data"},
    executor_def=data_job_executor(),  # multiprocess, or one Kubernetes pod per step (PIXEL_DATA_EXECUTOR=k8s)
)


def unfinished_compile(instance: dg.DagsterInstance) -> str | None:
    """The id of a compile_dataset run that is queued or running, if any."""
    runs = instance.get_run_records(dg.RunsFilter(job_name=COMPILE_JOB, statuses=UNFINISHED), limit=1)
    return runs[0].dagster_run.run_id if runs else None


@dg.schedule(
    name="nightly_compile",
    job=compile_dataset_job,
    cron_schedule="0 2 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Re-compile the dataset every night at 02:00 UTC (skipped while a compile is running).",
)
def nightly_compile_schedule(context: dg.ScheduleEvaluationContext):
    running = unfinished_compile(context.instance)
    if running:
        return dg.SkipReason(f"compile run {running[:8]} is still queued or running")
    return dg.RunRequest(tags={"pixel/trigger": "nightly"})


# --- what the sensor watches: exactly the files the ingest assets read -------------------------


def _s3_versions(client, bucket: str, pattern: str) -> dict[str, str]:
    """s3 URI -> "etag:size" for the keys matching a glob, listed with dagster-aws's get_objects."""
    from dagster_aws.s3.sensor import get_objects

    prefix, regex = glob_matcher(pattern)  # the same matching as DataRoot.glob, which ingest uses
    return {f"s3://{bucket}/{obj['Key']}": f"{obj.get('ETag', '')}:{obj.get('Size', '')}"
            for obj in get_objects(bucket, prefix, client=client) if regex.match(obj["Key"])}


def source_versions(registry: Registry, root: DataRoot, s3_client=None) -> dict[str, str]:
    """URI -> version stamp (size and mtime, or S3 ETag and size) of every file that an enabled
    family's sources match. New, changed and deleted files all change this mapping, whatever their
    timestamps (a copied file keeps an old mtime; S3 times have one-second resolution)."""
    versions: dict[str, str] = {}
    for family in registry.families:
        if not family.enabled:
            continue
        for source in family.sources:
            if source.path.startswith("s3://"):
                bucket, pattern = parse_s3_uri(source.path)
                s3_client = s3_client or default_s3_client()  # the client ingest would use
                versions.update(_s3_versions(s3_client, bucket, pattern))
            elif isinstance(root, S3DataRoot) and not os.path.isabs(source.path):
                pattern = f"{root.prefix}/{source.path}" if root.prefix else source.path
                versions.update(_s3_versions(root.client, root.bucket, pattern))
            else:
                for file_root, key in resolve_source(source.path, root):
                    stat = file_root.local_path(key).stat()
                    versions[file_root.uri(key)] = f"{stat.st_size}:{stat.st_mtime_ns}"
    return versions


def versions_fingerprint(versions: dict[str, str]) -> str:
    digest = hashlib.sha256()
    for uri in sorted(versions):
        digest.update(f"{uri}\t{versions[uri]}\n".encode())
    return digest.hexdigest()


@dg.sensor(
    job=compile_dataset_job,
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Re-compile when a file the registry's sources match is new, changed or deleted.",
)
def source_change_sensor(context: dg.SensorEvaluationContext, data_root: DataRootResource):
    previous = json.loads(context.cursor) if context.cursor else {}
    versions = source_versions(REGISTRY, data_root.root(), data_root.s3_client())
    fingerprint = versions_fingerprint(versions)
    if fingerprint == previous.get("fingerprint"):
        return dg.SkipReason(f"{len(versions)} source files, none new, changed or deleted")
    running = unfinished_compile(context.instance)
    if running:  # the cursor stays: the change is picked up once that run is done
        return dg.SkipReason(f"sources changed, but compile run {running[:8]} is still queued or running")
    change = previous.get("change", 0) + 1  # in the run key: sources reverted to an earlier state run again
    context.update_cursor(json.dumps({"fingerprint": fingerprint, "files": len(versions), "change": change}))
    context.log.info(f"source files: {previous.get('files', 0)} before, {len(versions)} now; contents changed")
    return dg.RunRequest(run_key=f"sources-{change}-{fingerprint[:16]}", tags={"pixel/trigger": "source_change"})
