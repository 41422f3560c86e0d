"""Every quarantine reason, the bad-input corpus through ingest_family, and family-level behaviour."""

import hashlib
import json

import pytest

from pixel_assets.lib import contract
from pixel_assets.lib.ingest import ingest_family, load_source_bytes
from pixel_assets.lib.registry import Family, Source
from pixel_assets.lib.storage import LocalDataRoot

GOOD = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}
SECRET = "Jane Doe 555-0100 jane@example.com"  # stands for PII: must never leak into quarantine


def family_for(fmt: str, path: str = "sources/t/*", **options) -> tuple[Family, Source]:
    source = Source(path=path, format=fmt, options=options)
    return Family(name="fam", required=False, license_tag="lic", phase="p", sources=(source,)), source


def load(fmt: str, data: bytes, max_record_bytes: int = 1_000_000, **options):
    family, source = family_for(fmt, **options)
    return load_source_bytes(data, source=source, family=family, source_key="file:///x/f",
                             max_record_bytes=max_record_bytes)


def only_reason(fmt: str, data: bytes, **kw) -> dict:
    recs, quar = load(fmt, data, **kw)
    assert recs == [] and len(quar) == 1, (recs, quar)
    return quar[0]


def line(obj) -> bytes:
    return (json.dumps(obj) + "\n").encode()


@pytest.mark.parametrize(
    "fmt, data, reason",
    [
        ("chatml", b'{"messages": [{"role": "user", "content": "' + SECRET.encode() + b'"\n', "invalid_json"),
        ("chatml", b'{"messages": [{"role": "user", "content": "caf\xe9 ' + SECRET.encode() + b'"}]}\n',
         "undecodable_bytes"),
        ("chatml", line({"messages": [{"role": "user", "content": SECRET}]}), "no_user_or_assistant_turn"),
        ("chatml", line({"messages": []}), "no_user_or_assistant_turn"),
        ("chatml", line({"messages": [{"role": "user", "content": "  "}, {"role": "assistant", "content": SECRET}]}),
         "empty_content"),
        ("chatml", line({"messages": [{"role": "Dr. Jane Doe", "content": SECRET}, {"role": "assistant", "content": "x"}]}),
         "unknown_role"),
        ("chatml", line({"messages": [{"role": "user", "content": 42}, {"role": "assistant", "content": "x"}]}),
         "wrong_types"),
        ("chatml", line({"messages": "not a list"}), "wrong_types"),
        ("chatml", line([SECRET]), "wrong_types"),
        ("context_response", line({"Context": SECRET}), "wrong_types"),
        ("preference_pairs", line({"prompt": "p", "chosen": SECRET, "rejected": " "}), "empty_content"),
        ("chatml", line({**GOOD, "quality_score": 7}), "schema_violation"),
        ("transcripts", b"<p> </p> \xff\xfe" + SECRET.encode(), "undecodable_bytes"),
        ("transcripts", b"", "unreadable_source"),
        ("qa_csv", b"questionTitle,questionText,answerText\n" + b"t,q,\x81" + SECRET.encode() + b"\n",
         "undecodable_bytes"),
        ("qa_csv", b"other,columns\n1,2\n", "unreadable_source"),
        ("qa_csv", b'questionTitle,questionText,answerText\nt,"q unclosed,' + SECRET.encode() + b"\nnext,row,here\n",
         "wrong_types"),
        ("marker_text_csv", b"text\n" + SECRET.encode() + b"\n", "no_user_or_assistant_turn"),
    ],
)
def test_each_reason_with_content_free_entry(fmt, data, reason):
    entry = only_reason(fmt, data)
    assert entry["reason"] == reason
    assert entry["reason"] in contract.QUARANTINE_REASONS
    assert entry["detail"]
    assert entry["raw_sha256"].startswith("sha256:") and entry["raw_size_bytes"] >= 0
    flat = json.dumps(entry)
    for fragment in ("Jane", "555-0100", "example.com"):
        assert fragment not in flat


def test_oversize_line_is_quarantined_and_neighbours_survive():
    big = line({"messages": [{"role": "user", "content": "x" * 5000}, {"role": "assistant", "content": "y"}]})
    recs, quar = load("chatml", line(GOOD) + big + line(GOOD), max_record_bytes=1000)
    assert len(recs) == 2
    assert [(q["location"], q["reason"]) for q in quar] == [("line 2", "oversize_record")]
    assert quar[0]["raw_size_bytes"] == len(big) - 1  # the line without its newline
    assert quar[0]["raw_sha256"] == "sha256:" + hashlib.sha256(big[:-1]).hexdigest()


def test_truncated_json_array_salvages_complete_items():
    data = json.dumps([GOOD, GOOD, GOOD]).encode()[:-30]
    recs, quar = load("chatml", data)
    assert len(recs) == 2
    assert [(q["location"], q["reason"]) for q in quar] == [("item 3", "invalid_json")]


def test_binary_file_is_one_unreadable_unit():
    blob = bytes(range(256)) * 40
    entry = only_reason("chatml", blob)
    assert (entry["location"], entry["reason"]) == ("file", "unreadable_source")
    assert entry["raw_size_bytes"] == len(blob)


def test_stray_nul_line_in_text_jsonl_is_line_level():
    recs, quar = load("chatml", line(GOOD) + b'{"messages": "\x00"}\n' + line(GOOD))
    assert len(recs) == 2 and [q["location"] for q in quar] == ["line 2"]


def test_empty_system_prompt_is_dropped_not_rejected():
    recs, quar = load("chatml", line({"messages": [{"role": "system", "content": ""}, *GOOD["messages"]]}))
    assert quar == [] and [m["role"] for m in recs[0]["messages"]] == ["user", "assistant"]


def test_turn_whose_alias_keys_are_all_null_is_wrong_types_naming_the_keys():
    entry = only_reason("chatml", line({"messages": [{"role": "user", "content": None, "text": None},
                                                     {"role": "assistant", "content": "x"}]}))
    assert entry["reason"] == "wrong_types"
    assert "turn 1" in entry["detail"] and "['content', 'text']" in entry["detail"]
    entry = only_reason("chatml", line({"messages": [{"role": None, "from": None, "content": "hi"},
                                                     {"role": "assistant", "content": "x"}]}))
    assert entry["reason"] == "wrong_types"
    assert "turn 1" in entry["detail"] and "['role', 'from']" in entry["detail"]


def write_bad_corpus(root: LocalDataRoot) -> dict[str, tuple[int, int]]:
    """Files under sources/bad/; returns {file: (expected valid, expected quarantined)}."""
    files = {
        "good.jsonl": (line(GOOD) * 3, (3, 0)),
        "invalid_utf8.jsonl": (line(GOOD) + b'{"messages": "\xc3\x28"}\n', (1, 1)),
        "truncated.jsonl": (line(GOOD) + line(GOOD)[:25], (1, 1)),
        "zero.jsonl": (b"", (0, 1)),
        "binary.jsonl": (bytes(range(256)) * 64, (0, 1)),
        "huge_line.jsonl": (
            line({"messages": [{"role": "user", "content": "z" * 10_000_000}, {"role": "assistant", "content": "a"}]})
            + line(GOOD), (1, 1)),
    }
    for name, (data, _) in files.items():
        root.write_bytes(f"sources/bad/{name}", data)
    csv_data = (
        b"questionTitle,questionText,answerText\n"
        b"ok,fine,<p>good</p>\n"
        b'broken,"never closed,answer\n'
        b"after,the,break\n"
    )
    root.write_bytes("sources/badcsv/broken.csv", csv_data)
    root.write_bytes("sources/badcsv/big_field.csv",
                     b"questionTitle,questionText,answerText\nt,q,\"" + b"w " * 2_000_000 + b"\"\nt,q,a\n")
    return {name: expected for name, (_, expected) in files.items()} | {
        "broken.csv": (1, 1), "big_field.csv": (1, 1)}


def test_bad_input_corpus_through_ingest_family(tmp_path):
    root = LocalDataRoot(tmp_path)
    expected = write_bad_corpus(root)
    family = Family(
        name="bad", required=False, license_tag="lic", phase="p",
        sources=(Source("sources/bad/*.jsonl", "chatml"), Source("sources/badcsv/*.csv", "qa_csv")),
    )
    logs: list[str] = []
    result = ingest_family(family, root, log=logs.append)
    assert len(result.files) == len(expected)
    assert result.read == result.valid + result.quarantined
    assert result.valid == sum(v for v, _ in expected.values())
    assert result.quarantined == sum(q for _, q in expected.values())
    per_file = {s["source_key"].rsplit("/", 1)[1]: (s["valid"], s["quarantined"]) for s in result.per_file}
    assert per_file == expected
    assert result.per_reason == {
        "undecodable_bytes": 1, "invalid_json": 1, "unreadable_source": 2, "oversize_record": 2,
        "wrong_types": 1,
    }
    assert sum(result.per_reason.values()) == result.quarantined
    assert result.quarantine.schema == pl_schema(contract.QUARANTINE_FRAME_SCHEMA)
    assert result.records.schema == pl_schema(contract.RECORDS_FRAME_SCHEMA)
    assert all(s.startswith("file://") for s in result.files)
    assert len(logs) == len(expected)  # one progress line per file
    assert all("z" * 20 not in msg for msg in logs)


def pl_schema(mapping):
    import polars as pl

    return pl.Schema(mapping)


def test_unmatched_glob_warns_and_disabled_family_is_empty(tmp_path):
    root = LocalDataRoot(tmp_path)
    family = Family(name="none", required=False, license_tag="l", phase="p",
                    sources=(Source("sources/missing/*.jsonl", "chatml"),))
    logs: list[str] = []
    result = ingest_family(family, root, log=logs.append)
    assert (result.read, result.valid, result.files) == (0, 0, [])
    assert any("WARNING" in m and "matched no files" in m for m in logs)

    root.write_bytes("sources/off/a.jsonl", line(GOOD))
    disabled = Family(name="off", required=False, license_tag="l", phase="p", enabled=False,
                      sources=(Source("sources/off/*.jsonl", "chatml"),))
    assert ingest_family(disabled, root).read == 0


def test_absolute_local_glob(tmp_path):
    (tmp_path / "abs").mkdir()
    (tmp_path / "abs" / "a.jsonl").write_bytes(line(GOOD) * 2)
    family = Family(name="abs", required=False, license_tag="l", phase="p",
                    sources=(Source(str(tmp_path / "abs" / "*.jsonl"), "chatml"),))
    result = ingest_family(family, LocalDataRoot(tmp_path / "elsewhere"))
    assert result.valid == 2
    assert result.files == [(tmp_path / "abs" / "a.jsonl").resolve().as_uri()]
    rec = contract.frame_to_records(result.records)[0]
    assert rec["metadata"]["source_key"] == result.files[0]


def test_s3_source_glob(monkeypatch):
    import boto3
    import moto

    for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "PIXEL_S3_ENDPOINT_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with moto.mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="raw")
        client.put_object(Bucket="raw", Key="in/fam/a.jsonl", Body=line(GOOD) + b"{bad\n")
        client.put_object(Bucket="raw", Key="in/fam/sub/b.jsonl", Body=line(GOOD))  # '*' stays in one folder
        family = Family(name="s3fam", required=False, license_tag="l", phase="p",
                        sources=(Source("s3://raw/in/fam/*.jsonl", "chatml"),))
        result = ingest_family(family, LocalDataRoot("/nonexistent"), s3_client=client)
    assert result.files == ["s3://raw/in/fam/a.jsonl"]
    assert (result.read, result.valid, result.per_reason) == (2, 1, {"invalid_json": 1})
    rec = contract.frame_to_records(result.records)[0]
    assert rec["metadata"]["provenance"]["original_s3_key"] == "s3://raw/in/fam/a.jsonl"
