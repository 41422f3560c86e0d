"""Storage wiring: the data root (local directory or S3 via dagster-aws) and the frame IO manager.

Configuration is by environment variables only (no code edits to switch):
  PIXEL_DATA_ROOT        local data root (default ./.pixel)
  PIXEL_S3_BUCKET        when set, the data root is s3://$PIXEL_S3_BUCKET/$PIXEL_S3_PREFIX
  PIXEL_S3_PREFIX        key prefix inside the bucket (default: none)
  PIXEL_S3_ENDPOINT_URL  S3-compatible endpoint (MinIO, moto, ...); AWS when unset
  PIXEL_CACHE_DIR        local cache directory (PII cache; default $PIXEL_DATA_ROOT/cache)
"""


import io
import json
import os
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
from dagster_aws.s3 import S3Resource

from pixel_assets.lib.storage import DEFAULT_LOCAL_ROOT, DataRoot, LocalDataRoot, S3DataRoot


class DataRootResource(dg.ConfigurableResource):
    """Where source files, intermediate frames and the compiled dataset live."""

    local_path: str = DEFAULT_LOCAL_ROOT
    s3_bucket: str | None = None
    s3_prefix: str = ""
    s3: S3Resource | None = None
    cache_dir: str | None = None

    def root(self) -> DataRoot:
        if self.s3_bucket:
            s3 = self.s3 or S3Resource()
            return S3DataRoot(s3.get_client(), self.s3_bucket, self.s3_prefix)
        return LocalDataRoot(self.local_path)

    def s3_client(self) -> Any | None:
        return (self.s3 or S3Resource()).get_client() if self.s3_bucket else None

    def local_cache_dir(self) -> Path:
        path = Path(self.cache_dir or Path(self.local_path) / "cache")
        path.mkdir(parents=True, exist_ok=True)
        return path


def data_root_from_env(env: dict[str, str] | None = None) -> DataRootResource:
    env = dict(os.environ if env is None else env)
    local = env.get("PIXEL_DATA_ROOT") or DEFAULT_LOCAL_ROOT
    bucket = env.get("PIXEL_S3_BUCKET")
    if not bucket:
        return DataRootResource(local_path=local, cache_dir=env.get("PIXEL_CACHE_DIR"))
    return DataRootResource(
        local_path=local,
        s3_bucket=bucket,
        s3_prefix=env.get("PIXEL_S3_PREFIX", ""),
        s3=S3Resource(
            endpoint_url=env.get("PIXEL_S3_ENDPOINT_URL") or None,
            region_name=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
        ),
        cache_dir=env.get("PIXEL_CACHE_DIR"),
    )


class FrameIOManager(dg.ConfigurableIOManager):
    """Stores asset values under the data root's `assets/` folder.

    polars DataFrames as Parquet, dicts/lists as JSON. One obvious place for every intermediate.
    """

    data_root: dg.ResourceDependency[DataRootResource]

    def _key(self, asset_key: dg.AssetKey, suffix: str) -> str:
        return "assets/" + "/".join(asset_key.path) + suffix

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        if obj is None:
            return
        root = self.data_root.root()
        if isinstance(obj, pl.DataFrame):
            buf = io.BytesIO()
            obj.write_parquet(buf, compression="zstd")
            root.write_bytes(self._key(context.asset_key, ".parquet"), buf.getvalue())
        else:
            root.write_text(self._key(context.asset_key, ".json"), json.dumps(obj, indent=1, default=str))

    def load_input(self, context: dg.InputContext) -> Any:
        root = self.data_root.root()
        parquet = self._key(context.asset_key, ".parquet")
        if root.exists(parquet):
            return pl.read_parquet(io.BytesIO(root.read_bytes(parquet)))
        return json.loads(root.read_text(self._key(context.asset_key, ".json")))


@dg.definitions
def storage_defs() -> dg.Definitions:
    data_root = data_root_from_env()
    return dg.Definitions(
        resources={"data_root": data_root, "io_manager": FrameIOManager(data_root=data_root)}
    )
