"""The data root behaves the same on local disk and on a real S3 endpoint (moto server on loopback)."""

import pytest

from pixel_assets.defs.storage.resources import data_root_from_env
from pixel_assets.lib.storage import LocalDataRoot, S3DataRoot, open_root, parse_s3_uri


def _exercise(root):
    root.write_text("sources/a/x.jsonl", "1")
    root.write_text("sources/a/y.jsonl", "2")
    root.write_text("sources/a/deeper/z.jsonl", "3")
    root.write_text("sources/b/x.csv", "4")
    assert root.read_text("sources/a/y.jsonl") == "2"
    assert root.exists("sources/a/x.jsonl") and not root.exists("sources/a/nope.jsonl")
    # '*' does not cross '/', like a shell glob
    assert root.glob("sources/a/*.jsonl") == ["sources/a/x.jsonl", "sources/a/y.jsonl"]
    assert root.glob("sources/*/x.*") == ["sources/a/x.jsonl", "sources/b/x.csv"]
    assert root.list_keys("sources/a/deeper") == ["sources/a/deeper/z.jsonl"]
    root.delete("sources/b/x.csv")
    assert root.glob("sources/b/*") == []


def test_local_root(tmp_path):
    root = LocalDataRoot(tmp_path)
    _exercise(root)
    assert root.uri("k/v.txt") == (tmp_path / "k/v.txt").resolve().as_uri()
    assert not any(p.name.startswith(".") for p in tmp_path.rglob("*")), "temp files left behind"


def test_s3_root_against_loopback_server(s3_client):
    s3_client.create_bucket(Bucket="pixel-test")
    root = S3DataRoot(s3_client, "pixel-test", "nightly/run1")
    _exercise(root)
    assert root.uri("a/b") == "s3://pixel-test/nightly/run1/a/b"
    # the prefix really is applied on the server
    keys = [o["Key"] for o in s3_client.list_objects_v2(Bucket="pixel-test")["Contents"]]
    assert all(k.startswith("nightly/run1/sources/") for k in keys)


def test_open_root_and_env_switch(s3_server, s3_client, tmp_path, monkeypatch):
    s3_client.create_bucket(Bucket="from-env")
    monkeypatch.setenv("PIXEL_S3_ENDPOINT_URL", s3_server)
    root = open_root("s3://from-env/pfx")
    root.write_text("x", "y")
    assert s3_client.get_object(Bucket="from-env", Key="pfx/x")["Body"].read() == b"y"

    local = data_root_from_env({"PIXEL_DATA_ROOT": str(tmp_path)}).root()
    assert isinstance(local, LocalDataRoot) and local.path == tmp_path.resolve()
    resource = data_root_from_env(
        {"PIXEL_S3_BUCKET": "from-env", "PIXEL_S3_PREFIX": "pfx", "PIXEL_S3_ENDPOINT_URL": s3_server}
    )
    assert resource.root().read_text("x") == "y"  # through dagster-aws's S3Resource


@pytest.mark.parametrize("bad", ["http://x/y", "s3://", "/local/path"])
def test_parse_s3_uri_rejects(bad):
    with pytest.raises(ValueError):
        parse_s3_uri(bad)


# --- misconfiguration fails loudly (new names are imported inside the tests so the older ones above
# --- still run against an older storage module)


@pytest.mark.parametrize(
    "env, named",
    [
        ({"PIXEL_S3_ENDPOINT_URL": "http://127.0.0.1:9000"}, ["PIXEL_S3_ENDPOINT_URL"]),
        ({"PIXEL_S3_PREFIX": "nightly"}, ["PIXEL_S3_PREFIX"]),
        ({"PIXEL_S3_PREFIX": "n", "PIXEL_S3_ENDPOINT_URL": "http://h:1", "PIXEL_DATA_ROOT": "/tmp/x"},
         ["PIXEL_S3_PREFIX", "PIXEL_S3_ENDPOINT_URL"]),
    ],
)
def test_s3_settings_without_a_bucket_are_an_error_not_local_storage(env, named):
    with pytest.raises(ValueError, match="PIXEL_S3_BUCKET is not") as info:
        data_root_from_env(env)
    assert type(info.value).__name__ == "StorageConfigError"
    for var in named:
        assert var in str(info.value)


def test_data_root_s3_uri_is_the_bucket_and_prefix(s3_server, s3_client, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s3_client.create_bucket(Bucket="uri-root")
    resource = data_root_from_env({"PIXEL_DATA_ROOT": "s3://uri-root/nightly/", "PIXEL_S3_ENDPOINT_URL": s3_server})
    root = resource.root()
    assert isinstance(root, S3DataRoot) and (root.bucket, root.prefix) == ("uri-root", "nightly")
    root.write_text("k", "v")
    assert s3_client.get_object(Bucket="uri-root", Key="nightly/k")["Body"].read() == b"v"
    assert not any("s3:" in p.name for p in tmp_path.rglob("*")), "no local folder named after the URI"
    assert "s3:" not in str(resource.local_cache_dir())
    # agreeing PIXEL_S3_* values are fine; disagreeing ones are an error naming both variables
    same = data_root_from_env({"PIXEL_DATA_ROOT": "s3://uri-root/nightly", "PIXEL_S3_BUCKET": "uri-root",
                               "PIXEL_S3_PREFIX": "nightly", "PIXEL_S3_ENDPOINT_URL": s3_server})
    assert same.root().read_text("k") == "v"
    for var, value in (("PIXEL_S3_BUCKET", "other-bucket"), ("PIXEL_S3_PREFIX", "weekly")):
        with pytest.raises(ValueError, match=f"PIXEL_DATA_ROOT=.*{var}"):
            data_root_from_env({"PIXEL_DATA_ROOT": "s3://uri-root/nightly", var: value})
    for bad in ("s3://", "gs://bucket/p"):
        with pytest.raises(ValueError, match="PIXEL_DATA_ROOT"):
            data_root_from_env({"PIXEL_DATA_ROOT": bad})


@pytest.mark.parametrize("bucket", ["s3://b/x", "my-bucket/nightly", "/my-bucket", "s3://"])
def test_bucket_that_is_a_path_is_rejected_pointing_at_the_prefix(bucket):
    with pytest.raises(ValueError, match="PIXEL_S3_BUCKET=.*PIXEL_S3_PREFIX"):
        data_root_from_env({"PIXEL_S3_BUCKET": bucket})


@pytest.mark.parametrize("bucket", ["My-Bucket", "under_score", "ab", "x" * 64, "-dash", "a..b"])
def test_invalid_bucket_name_is_rejected(bucket):
    with pytest.raises(ValueError, match="not a valid S3 bucket name"):
        data_root_from_env({"PIXEL_S3_BUCKET": bucket})


def test_bucket_without_credentials_loads_offline_and_fails_clearly_on_first_use(s3_server, no_aws_credentials):
    from botocore.exceptions import NoCredentialsError

    from pixel_assets.lib.storage import S3AccessError

    resource = data_root_from_env({"PIXEL_S3_BUCKET": "creds-bucket", "PIXEL_S3_ENDPOINT_URL": s3_server})
    root = resource.root()  # no network call, no error yet
    for use in (lambda: root.write_text("a/b", "x"), lambda: root.read_text("a/b"),
                lambda: root.exists("a/b"), lambda: root.glob("a/*"), lambda: root.delete("a/b")):
        with pytest.raises(S3AccessError) as info:
            use()
        message = str(info.value)
        assert "'creds-bucket'" in message and s3_server in message
        assert "AWS_ACCESS_KEY_ID" in message and "PIXEL_S3_ENDPOINT_URL" in message
        assert isinstance(info.value.__cause__, NoCredentialsError)


def test_missing_bucket_and_unreachable_endpoint_fail_clearly(s3_server, s3_client, monkeypatch):
    from botocore.exceptions import ClientError, EndpointConnectionError

    from pixel_assets.lib.storage import S3AccessError
    from pixel_assets_tests.helpers import free_port

    missing = data_root_from_env({"PIXEL_S3_BUCKET": "no-such-bucket", "PIXEL_S3_ENDPOINT_URL": s3_server}).root()
    with pytest.raises(S3AccessError, match="'no-such-bucket'.*PIXEL_S3_BUCKET") as info:
        missing.write_text("k", "v")
    assert isinstance(info.value.__cause__, ClientError)
    assert info.value.__cause__.response["Error"]["Code"] == "NoSuchBucket"

    # a missing *key* in an existing bucket is not a configuration problem: the botocore error is unchanged
    s3_client.create_bucket(Bucket="has-bucket")
    present = data_root_from_env({"PIXEL_S3_BUCKET": "has-bucket", "PIXEL_S3_ENDPOINT_URL": s3_server}).root()
    with pytest.raises(ClientError) as info:
        present.read_text("absent")
    assert not isinstance(info.value, S3AccessError)

    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    dead = f"http://127.0.0.1:{free_port()}"
    unreachable = data_root_from_env({"PIXEL_S3_BUCKET": "has-bucket", "PIXEL_S3_ENDPOINT_URL": dead}).root()
    with pytest.raises(S3AccessError, match=f"{dead}.*PIXEL_S3_ENDPOINT_URL") as info:
        unreachable.list_keys()
    assert isinstance(info.value.__cause__, EndpointConnectionError)


def test_io_manager_on_a_missing_bucket_names_it(s3_server):
    import dagster as dg
    import polars as pl

    from pixel_assets.defs.storage.resources import FrameIOManager
    from pixel_assets.lib.storage import S3AccessError

    @dg.asset
    def frame() -> pl.DataFrame:
        return pl.DataFrame({"a": [1]})

    data_root = data_root_from_env({"PIXEL_S3_BUCKET": "typo-bucket", "PIXEL_S3_ENDPOINT_URL": s3_server})
    result = dg.materialize(
        [frame], resources={"data_root": data_root, "io_manager": FrameIOManager(data_root=data_root)},
        raise_on_error=False,
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure).step_failure_data.error
    while failure is not None and failure.cls_name != S3AccessError.__name__:
        failure = failure.cause
    assert failure is not None and "'typo-bucket'" in failure.message
