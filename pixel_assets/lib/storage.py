"""Where the pipeline's files live: a local directory (default) or an S3 prefix.

Both implement the same small interface over *keys*: '/'-separated paths relative to the root.
Dagster wiring (env vars, dagster-aws's S3Resource) lives in pixel_assets/defs/storage.
"""

from __future__ import annotations

import fnmatch
import io
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import polars as pl

DEFAULT_LOCAL_ROOT = ".pixel"


class DataRoot(ABC):
    @abstractmethod
    def uri(self, key: str) -> str:
        """Stable URI of a key (file:///... or s3://bucket/prefix/key), used as source_key."""

    @abstractmethod
    def read_bytes(self, key: str) -> bytes: ...

    @abstractmethod
    def write_bytes(self, key: str, data: bytes) -> None: ...

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def delete(self, key: str) -> None: ...

    @abstractmethod
    def list_keys(self, prefix: str = "") -> list[str]:
        """All keys under a prefix, sorted."""

    def glob(self, pattern: str) -> list[str]:
        """Keys matching a glob ('*' does not cross '/'), sorted."""
        prefix, regex = glob_matcher(pattern)
        return [k for k in self.list_keys(prefix) if regex.match(k)]

    def read_text(self, key: str) -> str:
        return self.read_bytes(key).decode("utf-8")

    def write_text(self, key: str, text: str) -> None:
        self.write_bytes(key, text.encode("utf-8"))

    def read_parquet(self, key: str) -> pl.DataFrame:
        return pl.read_parquet(io.BytesIO(self.read_bytes(key)))

    def write_parquet(self, key: str, frame: pl.DataFrame) -> None:
        buf = io.BytesIO()
        frame.write_parquet(buf, compression="zstd")
        self.write_bytes(key, buf.getvalue())


def glob_matcher(pattern: str) -> tuple[str, re.Pattern[str]]:
    """The key prefix to list for a glob, and the regex a key must match ('*' does not cross '/')."""
    literal_prefix = re.split(r"[*?\[]", pattern, maxsplit=1)[0]
    prefix = literal_prefix.rsplit("/", 1)[0] + "/" if "/" in literal_prefix else ""
    return prefix, re.compile(fnmatch.translate(pattern).replace(".*", "[^/]*"))


class LocalDataRoot(DataRoot):
    def __init__(self, path: str | Path):
        self.path = Path(path).resolve()

    def __repr__(self) -> str:
        return f"LocalDataRoot({str(self.path)!r})"

    def _p(self, key: str) -> Path:
        return self.path / key

    def uri(self, key: str) -> str:
        return self._p(key).as_uri()

    def local_path(self, key: str) -> Path:
        return self._p(key)

    def read_bytes(self, key: str) -> bytes:
        return self._p(key).read_bytes()

    def write_bytes(self, key: str, data: bytes) -> None:
        # Write-then-rename so a reader never sees a partial file.
        target = self._p(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
        tmp.write_bytes(data)
        os.replace(tmp, target)

    def exists(self, key: str) -> bool:
        return self._p(key).is_file()

    def delete(self, key: str) -> None:
        self._p(key).unlink(missing_ok=True)

    def list_keys(self, prefix: str = "") -> list[str]:
        base = self._p(prefix) if prefix else self.path
        if base.is_file():
            return [prefix]
        if not base.is_dir():
            return []
        return sorted(
            p.relative_to(self.path).as_posix()
            for p in base.rglob("*")
            if p.is_file() and not p.name.startswith(".")
        )


class S3AccessError(RuntimeError):
    """S3 could not be reached or used at all (credentials, endpoint, bucket), as opposed to a missing key.

    The message names the bucket, the endpoint and the settings to check; the botocore error is chained.
    """


_CREDENTIALS_HINT = (
    "check the AWS credentials (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, AWS_PROFILE, "
    "or an instance/role profile)"
)
_S3_CLIENT_ERROR_HINTS = {
    "NoSuchBucket": "the bucket does not exist at this endpoint; check PIXEL_S3_BUCKET and PIXEL_S3_ENDPOINT_URL",
    "InvalidBucketName": "not a valid bucket name; check PIXEL_S3_BUCKET (a bare name; paths go in PIXEL_S3_PREFIX)",
    "PermanentRedirect": "the bucket lives in another region or endpoint; check AWS_REGION and PIXEL_S3_ENDPOINT_URL",
    "AuthorizationHeaderMalformed": "wrong region for this bucket; check AWS_REGION and PIXEL_S3_ENDPOINT_URL",
    "AccessDenied": "access denied; " + _CREDENTIALS_HINT + " and the bucket policy",
    "InvalidAccessKeyId": "the access key is not known to this endpoint; " + _CREDENTIALS_HINT,
    "SignatureDoesNotMatch": "the secret key does not match; " + _CREDENTIALS_HINT,
    "ExpiredToken": "the session token has expired; " + _CREDENTIALS_HINT,
    "InvalidToken": "the session token is invalid; " + _CREDENTIALS_HINT,
}


def _s3_failure_hint(exc: BaseException) -> str | None:
    """What to check for an S3 failure that means 'storage is misconfigured'; None for anything else
    (a missing key, a throttled request, ...), which is re-raised unchanged."""
    try:
        from botocore import exceptions as bx
    except ImportError:  # pragma: no cover - boto3 is installed with dagster-aws
        return None
    if isinstance(exc, (bx.NoCredentialsError, bx.PartialCredentialsError, bx.CredentialRetrievalError)):
        return "no usable credentials; " + _CREDENTIALS_HINT
    if isinstance(exc, bx.EndpointConnectionError):
        return "the endpoint cannot be reached; check PIXEL_S3_ENDPOINT_URL (unset means AWS) and the network"
    if isinstance(exc, bx.ClientError):
        return _S3_CLIENT_ERROR_HINTS.get(str(exc.response.get("Error", {}).get("Code", "")))
    return None


class S3DataRoot(DataRoot):
    """An S3 prefix, through a boto3 client (from dagster-aws's S3Resource in Dagster).

    Failures that mean the storage itself is misconfigured (no credentials, unreachable endpoint, no such
    bucket, access denied) are raised as S3AccessError naming the bucket, endpoint and settings to check.
    """

    def __init__(self, client: Any, bucket: str, prefix: str = ""):
        self.client, self.bucket, self.prefix = client, bucket, prefix.strip("/")

    def __repr__(self) -> str:
        return f"S3DataRoot('s3://{self.bucket}/{self.prefix}')"

    def _k(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._k(key)}"

    @contextmanager
    def _explained(self, action: str, key: str) -> Iterator[None]:
        try:
            yield
        except Exception as exc:
            hint = _s3_failure_hint(exc)
            if hint is None:
                raise
            endpoint = getattr(getattr(self.client, "meta", None), "endpoint_url", None) or "AWS default"
            raise S3AccessError(
                f"S3 {action} of {self.uri(key)} failed (bucket {self.bucket!r}, endpoint {endpoint}): "
                f"{type(exc).__name__}: {exc}. {hint[0].upper()}{hint[1:]}. "
                "The data root comes from PIXEL_S3_BUCKET / PIXEL_S3_PREFIX / PIXEL_S3_ENDPOINT_URL "
                "(or PIXEL_DATA_ROOT=s3://...)."
            ) from exc

    def read_bytes(self, key: str) -> bytes:
        with self._explained("read", key):
            return self.client.get_object(Bucket=self.bucket, Key=self._k(key))["Body"].read()

    def write_bytes(self, key: str, data: bytes) -> None:
        with self._explained("write", key):
            self.client.put_object(Bucket=self.bucket, Key=self._k(key), Body=data)

    def exists(self, key: str) -> bool:
        with self._explained("lookup", key):
            resp = self.client.list_objects_v2(Bucket=self.bucket, Prefix=self._k(key), MaxKeys=1)
        return any(o["Key"] == self._k(key) for o in resp.get("Contents", []))

    def delete(self, key: str) -> None:
        with self._explained("delete", key):
            self.client.delete_object(Bucket=self.bucket, Key=self._k(key))

    def list_keys(self, prefix: str = "") -> list[str]:
        strip = len(self.prefix) + 1 if self.prefix else 0
        keys: list[str] = []
        with self._explained("listing", prefix):
            paginator = self.client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self._k(prefix)):
                keys.extend(o["Key"][strip:] for o in page.get("Contents", []))
        return sorted(keys)


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """'s3://bucket/some/prefix' -> ('bucket', 'some/prefix')."""
    if not uri.startswith("s3://"):
        raise ValueError(f"not an s3:// URI: {uri!r}")
    bucket, _, prefix = uri[len("s3://"):].partition("/")
    if not bucket:
        raise ValueError(f"s3 URI without a bucket: {uri!r}")
    return bucket, prefix.strip("/")


def open_root(location: str, *, endpoint_url: str | None = None) -> DataRoot:
    """A DataRoot from a local path or an s3:// URI (used by CLI commands outside Dagster)."""
    if location.startswith("s3://"):
        import boto3

        bucket, prefix = parse_s3_uri(location)
        client = boto3.client("s3", endpoint_url=endpoint_url or os.environ.get("PIXEL_S3_ENDPOINT_URL"))
        return S3DataRoot(client, bucket, prefix)
    return LocalDataRoot(location)
