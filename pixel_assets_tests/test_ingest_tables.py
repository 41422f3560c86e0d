"""Containers beyond text files: Parquet (any row format; CSV formats map columns as for a CSV),
JSON arrays / JSONL for the dialog formats, and hf_dataset (save_to_disk output or the local
Hugging Face hub cache, offline). Each: records, quarantine reasons, read = valid + quarantined."""

import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pixel_assets.lib import contract
from pixel_assets.lib.ingest import ingest_family, load_source_bytes
from pixel_assets.lib.registry import Family, Source
from pixel_assets.lib.storage import LocalDataRoot


def parquet_bytes(table: pa.Table, **kwargs) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf, **kwargs)
    return buf.getvalue()


def load(fmt: str, data: bytes, key: str = "file:///t/part-0.parquet", max_record_bytes: int = 1_000_000, **options):
    source = Source(path="sources/t/*.parquet", format=fmt, options=options)
    family = Family(name="fam", required=False, license_tag="l", phase="p", sources=(source,))
    return load_source_bytes(data, source=source, family=family, source_key=key, max_record_bytes=max_record_bytes)


def family_of(path: str, fmt: str, **options) -> Family:
    return Family(name="fam", required=False, license_tag="l", phase="p",
                  sources=(Source(path=path, format=fmt, options=options),))


def pairs(records):
    return [[(m["role"], m["content"]) for m in r["messages"]] for r in records]


def test_parquet_with_csv_column_mapping_and_row_locations():
    table = pa.table({
        "subject": ["Can't sleep", "Anxiety", None, "Numbers"],
        "body": ["Every night.", None, None, "x"],
        "reply_html": ["<p>Try a routine &amp; no screens.</p>", "<p>Breathe.</p>", "<p>orphan</p>", "<p>ok</p>"],
    })
    table = table.append_column("n", pa.array([1, 2, 3, 4]))
    recs, quar = load("qa_csv", parquet_bytes(table), question_columns=["subject", "body"], answer_column="reply_html")
    assert pairs(recs) == [[("user", "Can't sleep\n\nEvery night."), ("assistant", "Try a routine & no screens.")],
                           [("user", "Anxiety"), ("assistant", "Breathe.")],
                           [("user", "Numbers\n\nx"), ("assistant", "ok")]]
    assert [r["metadata"]["source_location"] for r in recs] == ["row 1", "row 2", "row 4"]
    assert [(q["location"], q["reason"]) for q in quar] == [("row 3", "empty_content")]  # nulls read as empty cells
    assert len(recs) + len(quar) == table.num_rows


def test_parquet_quarantine_reasons_are_counted_not_raised():
    wrong = pa.table({"questionTitle": ["t"], "questionText": [""], "answerText": [7]})
    recs, quar = load("qa_csv", parquet_bytes(wrong))
    assert recs == [] and [(q["location"], q["reason"]) for q in quar] == [("row 1", "wrong_types")]
    missing = pa.table({"questionTitle": ["t"], "answerText": ["a"]})
    recs, quar = load("qa_csv", parquet_bytes(missing))
    assert recs == [] and [(q["location"], q["reason"]) for q in quar] == [("file", "unreadable_source")]
    assert "questionText" in quar[0]["detail"]
    for broken in (b"PAR1 this is not parquet PAR1", parquet_bytes(missing)[:-20], b""):
        recs, quar = load("qa_csv", broken)
        assert recs == [] and [(q["location"], q["reason"]) for q in quar] == [("file", "unreadable_source")]
    big = pa.table({"Context": ["q", "x" * 5000], "Response": ["a", "b"]})
    recs, quar = load("context_response", parquet_bytes(big), max_record_bytes=1000)
    assert len(recs) == 1 and [(q["location"], q["reason"]) for q in quar] == [("row 2", "oversize_record")]


def test_parquet_of_nested_dialogs_with_dialog_options_in_small_row_groups():
    dialogs = [[{"speaker": "seeker", "text": f"q{i}"}, {"speaker": "supporter", "text": f"a{i}"}] for i in range(5)]
    dialogs[3] = [{"speaker": "narrator", "text": "?"}]
    table = pa.table({"dialog": dialogs, "situation": ["s0", None, "s2", "s3", "s4"]})
    data = parquet_bytes(table, row_group_size=2)
    recs, quar = load("chatml", data, messages_key="dialog", role_map={"seeker": "user", "supporter": "assistant"},
                      system_fields=["situation"])
    assert len(recs) == 4 and [(q["location"], q["reason"]) for q in quar] == [("row 4", "unknown_role")]
    assert pairs(recs)[0] == [("system", "situation: s0"), ("user", "q0"), ("assistant", "a0")]
    assert pairs(recs)[1] == [("user", "q1"), ("assistant", "a1")]  # a null field is skipped
    assert recs[-1]["metadata"]["source_location"] == "row 5"


def test_dialog_formats_read_json_arrays_and_jsonl_with_options():
    items = [{"dialog": [{"who": "seeker", "said": "q"}, {"who": "supporter", "said": "a"}]},
             {"dialog": [{"who": "seeker", "said": "q2"}, {"who": "seeker", "said": "more"}]}]
    options = {"conversations_key": "dialog", "role_key": "who", "content_key": "said",
               "role_map": {"seeker": "user", "supporter": "assistant"}, "consecutive_turns": "quarantine"}
    for data, locations in ((json.dumps(items), ("item 1", "item 2")),
                            ("\n".join(json.dumps(i) for i in items), ("line 1", "line 2"))):
        recs, quar = load("sharegpt", data.encode(), key="file:///t/x.json", **options)
        assert pairs(recs) == [[("user", "q"), ("assistant", "a")]]
        assert recs[0]["metadata"]["source_location"] == locations[0]
        assert [(q["location"], q["reason"]) for q in quar] == [(locations[1], "consecutive_turns")]


def _save(tmp_path, name, rows, **splits):
    datasets = pytest.importorskip("datasets")
    if splits:
        datasets.DatasetDict({s: datasets.Dataset.from_list(r) for s, r in splits.items()}).save_to_disk(str(tmp_path / name))
    else:
        datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / name))


def test_hf_dataset_saved_to_disk_relative_and_absolute(tmp_path):
    rows = [{"Context": "I can't focus.", "Response": "Let's look at your sleep."}, {"Context": "", "Response": "x"}]
    _save(tmp_path / "sources", "counsel", rows)
    root = LocalDataRoot(tmp_path)
    for path in ("sources/counsel", str(tmp_path / "sources" / "*")):
        result = ingest_family(family_of(path, "hf_dataset", row_format="context_response"), root)
        assert (result.read, result.valid, result.per_reason) == (2, 1, {"empty_content": 1}), path
        [record] = contract.frame_to_records(result.records)
        assert record["metadata"]["source_location"] == "row 1"
        assert record["metadata"]["original_format"] == "hf_dataset"
        assert result.quarantine.get_column("location").to_list() == ["row 2"]
        assert contract.record_errors(record, compiled=False) == []


def test_hf_dataset_dict_reads_the_configured_split(tmp_path):
    turn = lambda q: [{"role": "seeker", "content": q}, {"role": "supporter", "content": "ok"}]  # noqa: E731
    _save(tmp_path, "esc", None, train=[{"messages": turn("a")}, {"messages": turn("b")}], test=[{"messages": turn("c")}])
    root = LocalDataRoot(tmp_path)
    role_map = {"seeker": "user", "supporter": "assistant"}
    train = ingest_family(family_of("esc", "hf_dataset", role_map=role_map), root)
    test = ingest_family(family_of("esc", "hf_dataset", split="test", role_map=role_map), root)
    assert (train.read, train.valid, test.read, test.valid) == (2, 2, 1, 1)
    assert contract.frame_to_records(test.records)[0]["messages"][0] == {"role": "user", "content": "c"}
    nosplit = ingest_family(family_of("esc", "hf_dataset", split="validation", role_map=role_map), root)
    assert (nosplit.read, nosplit.per_reason) == (1, {"unreadable_source": 1})
    assert "validation" in nosplit.quarantine.get_column("detail")[0]


def test_hf_dataset_from_the_local_hub_cache_offline(tmp_path, monkeypatch):
    """A dataset downloaded earlier into the HF hub cache is read from there, never the network."""
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cache = tmp_path / "hub"
    repo = cache / "datasets--acme--support_dialogs"
    commit = "0123456789abcdef0123456789abcdef01234567"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    data = repo / "snapshots" / commit / "data"
    data.mkdir(parents=True)
    rows = lambda n: pa.table({"Context": [f"q{i}" for i in range(n)], "Response": [f"a{i}" for i in range(n)]})  # noqa: E731
    pq.write_table(rows(3), data / "train-00000-of-00001.parquet")
    pq.write_table(rows(2), data / "test-00000-of-00001.parquet")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    root = LocalDataRoot(tmp_path / "root")
    result = ingest_family(family_of("hf://acme/support_dialogs", "hf_dataset", row_format="context_response"), root)
    assert (result.read, result.valid) == (3, 3)
    assert result.files[0].endswith("train-00000-of-00001.parquet")
    test = ingest_family(family_of("hf://acme/support_dialogs", "hf_dataset", row_format="context_response", split="test"), root)
    assert (test.read, test.valid) == (2, 2)
    logs = []
    absent = ingest_family(family_of("hf://acme/not_downloaded", "hf_dataset"), root, log=logs.append)
    assert absent.read == 0 and any("matched no files" in line for line in logs)
