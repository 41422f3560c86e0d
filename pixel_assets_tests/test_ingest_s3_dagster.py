"""The Dagster ingest path on S3: sources in a bucket, frames written back through the IO manager."""

import io

import dagster as dg
import polars as pl
from dagster_aws.s3 import S3Resource

from pixel_assets.defs.ingest.assets import ingest_assets
from pixel_assets.defs.keys import normalized_key
from pixel_assets.defs.storage.resources import DataRootResource, FrameIOManager
from pixel_assets.lib.demo_data import generate_demo_sources
from pixel_assets.lib.storage import S3DataRoot


def test_ingest_asset_reads_and_writes_s3(s3_server, s3_client):
    s3_client.create_bucket(Bucket="pixel-data")
    plan = generate_demo_sources(S3DataRoot(s3_client, "pixel-data", "nightly"), seed=3, scale=0.1)
    data_root = DataRootResource(
        s3_bucket="pixel-data", s3_prefix="nightly", s3=S3Resource(endpoint_url=s3_server, region_name="us-east-1")
    )
    ingest_cptsd = next(a for a in ingest_assets if a.op.name == "ingest_cptsd")
    result = dg.materialize(
        [ingest_cptsd],
        resources={"data_root": data_root, "io_manager": FrameIOManager(data_root=data_root)},
    )
    assert result.success
    meta = result.asset_materializations_for_node("ingest_cptsd")[0].metadata
    assert meta["read"].value == plan.families["cptsd"].records_written
    assert meta["read"].value == meta["valid"].value + meta["quarantined"].value
    assert meta["quarantined"].value == sum(plan.families["cptsd"].malformed.values())

    body = s3_client.get_object(Bucket="pixel-data", Key="nightly/assets/" + "/".join(normalized_key("cptsd").path) + ".parquet")["Body"].read()
    frame = pl.read_parquet(io.BytesIO(body))
    assert len(frame) == meta["valid"].value
    assert frame["record"].str.contains('"source_key":"s3://pixel-data/nightly/sources/cptsd/').all()
