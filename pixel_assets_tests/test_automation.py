"""Nightly schedule and source sensor: data assets only, and re-compilation on new sources."""

import os
import time

import dagster as dg

from pixel_assets.definitions import defs
from pixel_assets.defs.automation.automation import source_change_sensor
from pixel_assets.defs.storage.resources import DataRootResource


def test_compile_job_selects_data_assets_only():
    d = defs()
    job = d.resolve_job_def("compile_dataset")
    keys = {k.to_user_string() for k in job.asset_layer.selected_asset_keys}
    assert {"compiled_dataset", "deduplicated", "normalized/cptsd", "scrubbed/cptsd"} <= keys
    assert not any(k.startswith("raw/") for k in keys)  # external sources are not materialized
    schedule = d.resolve_schedule_def("nightly_compile")
    assert schedule.job_name == "compile_dataset" and schedule.cron_schedule == "0 2 * * *"


def test_source_sensor_fires_on_new_and_changed_files(tmp_path):
    resource = DataRootResource(local_path=str(tmp_path))
    src = tmp_path / "sources" / "cptsd" / "a.jsonl"
    src.parent.mkdir(parents=True)
    src.write_text("{}\n")

    with dg.build_sensor_context(resources={"data_root": resource}) as ctx:
        first = source_change_sensor(ctx)
        assert isinstance(first, dg.RunRequest)
        cursor = ctx.cursor
    with dg.build_sensor_context(cursor=cursor, resources={"data_root": resource}) as ctx:
        assert isinstance(source_change_sensor(ctx), dg.SkipReason)  # nothing new

    later = time.time() + 5
    src.write_text('{"changed": true}\n')
    os.utime(src, (later, later))
    with dg.build_sensor_context(cursor=cursor, resources={"data_root": resource}) as ctx:
        assert isinstance(source_change_sensor(ctx), dg.RunRequest)


def test_source_sensor_on_s3(s3_client, s3_server):
    from dagster_aws.s3 import S3Resource

    s3_client.create_bucket(Bucket="src")
    resource = DataRootResource(s3_bucket="src", s3_prefix="p", s3=S3Resource(endpoint_url=s3_server))
    with dg.build_sensor_context(resources={"data_root": resource}) as ctx:
        assert isinstance(source_change_sensor(ctx), dg.SkipReason)
    s3_client.put_object(Bucket="src", Key="p/sources/cptsd/a.jsonl", Body=b"{}")
    s3_client.put_object(Bucket="src", Key="p/other/x", Body=b"{}")  # outside sources/: ignored
    with dg.build_sensor_context(resources={"data_root": resource}) as ctx:
        request = source_change_sensor(ctx)
        assert isinstance(request, dg.RunRequest)
        cursor = ctx.cursor
    with dg.build_sensor_context(cursor=cursor, resources={"data_root": resource}) as ctx:
        assert isinstance(source_change_sensor(ctx), dg.SkipReason)
