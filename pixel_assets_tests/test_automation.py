"""Nightly schedule and source sensor: data assets only, and re-compilation on new sources."""

import os
import time

import dagster as dg

from pixel_assets.definitions import defs
from pixel_assets.defs.automation.automation import nightly_compile_schedule, source_change_sensor
from pixel_assets.defs.storage.resources import DataRootResource
from pixel_assets.defs.keys import normalized_key, scrubbed_key


def test_compile_job_selects_data_assets_only():
    d = defs()
    job = d.resolve_job_def("compile_dataset")
    keys = {k.to_user_string() for k in job.asset_layer.selected_asset_keys}
    assert {"compiled_dataset", "deduplicated", normalized_key("cptsd").to_user_string(), scrubbed_key("cptsd").to_user_string()} <= keys
    assert not any(k.startswith("raw/") for k in keys)  # external sources are not materialized
    schedule = d.resolve_schedule_def("nightly_compile")
    assert schedule.job_name == "compile_dataset" and schedule.cron_schedule == "0 2 * * *"


def tick(resource: DataRootResource, cursor: str | None = None, instance=None):
    """One sensor evaluation: (result, cursor after it)."""
    if instance is None:
        with dg.instance_for_test() as fresh:
            return tick(resource, cursor, fresh)
    with dg.build_sensor_context(cursor=cursor, resources={"data_root": resource}, instance=instance) as ctx:
        result = source_change_sensor(ctx)
        return result, ctx.cursor


def test_source_sensor_fires_on_new_changed_and_deleted_files_whatever_their_mtime(tmp_path):
    resource = DataRootResource(local_path=str(tmp_path))
    src = tmp_path / "sources" / "cptsd" / "a.jsonl"
    src.parent.mkdir(parents=True)
    src.write_text("{}\n")

    first, cursor = tick(resource)
    assert isinstance(first, dg.RunRequest)
    result, cursor = tick(resource, cursor)
    assert isinstance(result, dg.SkipReason)  # nothing new

    # A new file copied with an old mtime (cp -p, tar, rsync -a) is still new.
    old = tmp_path / "sources" / "cptsd" / "b.jsonl"
    old.write_text('{"b": 1}\n')
    os.utime(old, (1_000_000, 1_000_000))
    result, cursor = tick(resource, cursor)
    assert isinstance(result, dg.RunRequest)
    # A changed file, then a deleted one.
    later = time.time() + 5
    src.write_text('{"changed": true}\n')
    os.utime(src, (later, later))
    result, cursor = tick(resource, cursor)
    assert isinstance(result, dg.RunRequest)
    old.unlink()
    deleted, cursor = tick(resource, cursor)
    assert isinstance(deleted, dg.RunRequest)
    # Files outside every registry source are not watched.
    (tmp_path / "sources" / "notes.txt").write_text("x")
    result, cursor = tick(resource, cursor)
    assert isinstance(result, dg.SkipReason)
    # Back to an earlier state: a new run key, so Dagster does not deduplicate the run away.
    old.write_text('{"b": 1}\n')
    os.utime(old, (1_000_000, 1_000_000))
    reverted, cursor = tick(resource, cursor)
    assert isinstance(reverted, dg.RunRequest) and reverted.run_key != deleted.run_key


def test_source_sensor_waits_while_a_compile_runs(tmp_path):
    resource = DataRootResource(local_path=str(tmp_path))
    (tmp_path / "sources" / "cptsd").mkdir(parents=True)
    (tmp_path / "sources" / "cptsd" / "a.jsonl").write_text("{}\n")
    with dg.instance_for_test() as instance:
        instance.add_run(dg.DagsterRun(job_name="compile_dataset", run_id="0123456789ab", status=dg.DagsterRunStatus.STARTED))
        result, cursor = tick(resource, instance=instance)
        assert isinstance(result, dg.SkipReason) and "01234567" in result.skip_message
        assert cursor is None  # not consumed: picked up once that run is done
        with dg.build_schedule_context(instance=instance) as ctx:
            assert isinstance(nightly_compile_schedule(ctx), dg.SkipReason)
    with dg.instance_for_test() as idle:
        result, _ = tick(resource, instance=idle)
        assert isinstance(result, dg.RunRequest)
        with dg.build_schedule_context(instance=idle) as ctx:
            assert isinstance(nightly_compile_schedule(ctx), dg.RunRequest)


def test_source_sensor_on_s3_sees_an_upload_in_the_same_second(s3_client, s3_server):
    from dagster_aws.s3 import S3Resource

    s3_client.create_bucket(Bucket="src")
    resource = DataRootResource(s3_bucket="src", s3_prefix="p", s3=S3Resource(endpoint_url=s3_server))
    empty, cursor = tick(resource)
    assert isinstance(empty, dg.RunRequest)  # first evaluation: nothing compiled by the sensor yet
    result, cursor = tick(resource, cursor)
    assert isinstance(result, dg.SkipReason)
    s3_client.put_object(Bucket="src", Key="p/sources/cptsd/a.jsonl", Body=b"{}")
    s3_client.put_object(Bucket="src", Key="p/other/x", Body=b"{}")  # outside every source: ignored
    result, cursor = tick(resource, cursor)
    assert isinstance(result, dg.RunRequest)
    # Same second as the previous object: a LastModified cursor would miss it.
    s3_client.put_object(Bucket="src", Key="p/sources/cptsd/b.jsonl", Body=b"{}")
    result, cursor = tick(resource, cursor)
    assert isinstance(result, dg.RunRequest)
    result, cursor = tick(resource, cursor)
    assert isinstance(result, dg.SkipReason)
