"""Storage wiring: the data root (local directory or S3 via dagster-aws) and the frame IO manager.

Configuration is by environment variables only (no code edits to switch):
  PIXEL_DATA_ROOT        local data root (default ./.pixel), or s3://bucket/prefix (same as the two below)
  PIXEL_S3_BUCKET        when set, the data root is s3://$PIXEL_S3_BUCKET/$PIXEL_S3_PREFIX (a bare bucket name)
  PIXEL_S3_PREFIX        key prefix inside the bucket (default: none)
  PIXEL_S3_ENDPOINT_URL  S3-compatible endpoint (MinIO, moto, ...); AWS when unset
  PIXEL_CACHE_DIR        local cache directory (PII cache; default $PIXEL_DATA_ROOT/cache, or ./.pixel/cache if that is s3://)

A contradictory or incomplete setting (an S3 prefix or endpoint without a bucket, a bucket that is a
path, PIXEL_DATA_ROOT=s3://... disagreeing with PIXEL_S3_*) raises StorageConfigError when the
definitions load, instead of silently writing somewhere else. Nothing touches the network at load time.
"""


import json
import os
import re
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
from dagster_aws.s3 import S3Resource

from pixel_assets.lib.storage import DEFAULT_LOCAL_ROOT, DataRoot, LocalDataRoot, S3DataRoot, parse_s3_uri


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


class StorageConfigError(ValueError):
    """The storage environment variables are contradictory or incomplete; the message names them."""


# S3 bucket naming rules (AWS and S3-compatible servers): 3-63 lowercase letters, digits, '.', '-'.
_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_URL_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")


def _check_bucket_name(bucket: str) -> None:
    if _BUCKET_NAME.fullmatch(bucket) and ".." not in bucket:
        return
    if "/" in bucket:
        b, _, p = _URL_SCHEME.sub("", bucket, count=1).strip("/").partition("/")
        example = f" (PIXEL_S3_BUCKET={b} PIXEL_S3_PREFIX={p}, or PIXEL_DATA_ROOT=s3://{b}/{p})" if b and p else ""
        raise StorageConfigError(
            f"PIXEL_S3_BUCKET={bucket!r} is not a bucket name: give the bare bucket name and put the key path "
            f"in PIXEL_S3_PREFIX{example}"
        )
    raise StorageConfigError(
        f"PIXEL_S3_BUCKET={bucket!r} is not a valid S3 bucket name (3-63 characters: lowercase letters, "
        "digits, '.' and '-', starting and ending with a letter or digit); a key path goes in PIXEL_S3_PREFIX"
    )


def data_root_from_env(env: dict[str, str] | None = None) -> DataRootResource:
    """The data root resource from PIXEL_* variables; StorageConfigError when they contradict each other."""
    env = dict(os.environ if env is None else env)
    data_root = (env.get("PIXEL_DATA_ROOT") or "").strip()
    bucket = (env.get("PIXEL_S3_BUCKET") or "").strip()
    prefix = (env.get("PIXEL_S3_PREFIX") or "").strip().strip("/")
    local = data_root or DEFAULT_LOCAL_ROOT
    if data_root.lower().startswith("s3://"):
        try:
            uri_bucket, uri_prefix = parse_s3_uri("s3://" + data_root[len("s3://"):])
        except ValueError as exc:
            raise StorageConfigError(f"PIXEL_DATA_ROOT={data_root!r}: {exc}") from exc
        for var, given, from_uri in (("PIXEL_S3_BUCKET", bucket, uri_bucket), ("PIXEL_S3_PREFIX", prefix, uri_prefix)):
            if given and given != from_uri:
                raise StorageConfigError(
                    f"PIXEL_DATA_ROOT={data_root!r} and {var}={env.get(var)!r} disagree; "
                    "set the S3 location one way only"
                )
        bucket, prefix, local = uri_bucket, uri_prefix, DEFAULT_LOCAL_ROOT
    elif _URL_SCHEME.match(data_root):
        raise StorageConfigError(
            f"PIXEL_DATA_ROOT={data_root!r} looks like a URL; it takes a local path or an s3://bucket/prefix URI"
        )
    if not bucket:
        stray = [var for var in ("PIXEL_S3_PREFIX", "PIXEL_S3_ENDPOINT_URL") if (env.get(var) or "").strip()]
        if stray:
            raise StorageConfigError(
                f"{' and '.join(stray)} {'is' if len(stray) == 1 else 'are'} set but PIXEL_S3_BUCKET is not, "
                f"so the data would go to the local {local!r} instead of S3. Set PIXEL_S3_BUCKET "
                f"(or PIXEL_DATA_ROOT=s3://bucket/prefix), or unset {' and '.join(stray)} to use local storage"
            )
        return DataRootResource(local_path=local, cache_dir=env.get("PIXEL_CACHE_DIR") or None)
    _check_bucket_name(bucket)
    if _URL_SCHEME.match(prefix):
        raise StorageConfigError(
            f"PIXEL_S3_PREFIX={env.get('PIXEL_S3_PREFIX')!r} is a URL; it takes a key path inside the bucket"
        )
    return DataRootResource(
        local_path=local,
        s3_bucket=bucket,
        s3_prefix=prefix,
        s3=S3Resource(
            endpoint_url=env.get("PIXEL_S3_ENDPOINT_URL") or None,
            region_name=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
        ),
        cache_dir=env.get("PIXEL_CACHE_DIR") or None,
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
            root.write_parquet(self._key(context.asset_key, ".parquet"), obj)
        else:
            root.write_text(self._key(context.asset_key, ".json"), json.dumps(obj, indent=1, default=str))

    def load_input(self, context: dg.InputContext) -> Any:
        root = self.data_root.root()
        parquet = self._key(context.asset_key, ".parquet")
        if root.exists(parquet):
            return root.read_parquet(parquet)
        return json.loads(root.read_text(self._key(context.asset_key, ".json")))


@dg.definitions
def storage_defs() -> dg.Definitions:
    data_root = data_root_from_env()
    return dg.Definitions(
        resources={"data_root": data_root, "io_manager": FrameIOManager(data_root=data_root)}
    )
