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
