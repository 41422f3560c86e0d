"""New sources added by configuration alone compile, with every record accounted for.

A registry YAML written here (the packaged families plus three new ones, no code) adds: an
emotional-support dialog corpus in the ESConv shape (speakers "seeker"/"supporter", several seeker
turns in a row, a `situation` field, a JSON array), a Parquet file of forum answers with its own
column names, and a dataset saved with `datasets.save_to_disk` (speakers "speaker"/"listener").
Each is ingested by the real Dagster ingest asset, then scrubbed, deduplicated, split and compiled;
the counts are checked against what this test wrote, not against the pipeline's own sums.
"""

from __future__ import annotations

import json
import random
from importlib import resources

import dagster as dg
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pixel_assets.defs.ingest.assets import build_ingest_asset
from pixel_assets.defs.keys import normalized_key, quarantine_key
from pixel_assets.defs.storage.resources import DataRootResource, FrameIOManager
from pixel_assets.lib.accounting import family_accounting
from pixel_assets.lib.registry import load_registry
from pixel_assets.lib.storage import LocalDataRoot

NEW_FAMILIES_YAML = """
  - name: peer_support
    required: false
    license_tag: cc-by-nc-4.0
    phase: stage1_foundation
    sources:
      - path: "sources/peer_support/*.json"
        format: chatml
        options:
          messages_key: dialog
          role_map: {seeker: user, supporter: assistant}
          consecutive_turns: merge
          system_fields: [situation]
          metadata_fields: [emotion_type, problem_type]
  - name: forum_parquet
    required: false
    license_tag: cc-by-4.0
    phase: stage1_foundation
    sources:
      - path: "sources/forum_parquet/*.parquet"
        format: qa_csv
        options: {question_columns: [subject, body], answer_column: reply, html: false}
  - name: listener_logs
    required: false
    license_tag: cc-by-4.0
    phase: stage1_foundation
    sources:
      - path: "sources/listener_logs/saved"
        format: hf_dataset
        options:
          row_format: sharegpt
          conversations_key: turns
          role_key: who
          content_key: said
          role_map: {speaker: user, listener: assistant}
          consecutive_turns: quarantine
"""

FEELINGS = ["anxious", "exhausted", "lonely", "overwhelmed", "restless", "numb", "tense", "discouraged"]
CAUSES = ["my new job", "the exams", "moving house", "my sister's wedding", "the night shifts", "a breakup",
          "money worries", "my father's illness"]
REPLIES = ["That sounds heavy to carry.", "It makes sense you feel that way.", "What has helped before?",
           "Could you tell me more about the evenings?", "Small routines can steady a week like that.",
           "You are not the only one who feels this.", "Which part weighs most right now?"]


def _sentence(rng: random.Random, i: int) -> str:
    return (f"Since {rng.choice(CAUSES)} I have felt {rng.choice(FEELINGS)} on {i % 7 + 2} days a week, "
            f"and {rng.choice(CAUSES)} keeps me {rng.choice(FEELINGS)} at night (case {i}).")


def _esconv_like(rng: random.Random, n: int) -> list[dict]:
    dialogs = []
    for i in range(n):
        dialogs.append({
            "emotion_type": rng.choice(["anxiety", "sadness", "anger"]), "problem_type": "ongoing depression",
            "situation": f"Feeling {rng.choice(FEELINGS)} after {rng.choice(CAUSES)} (situation {i}).",
            "dialog": [
                {"speaker": "seeker", "content": "Hello."},
                {"speaker": "seeker", "content": _sentence(rng, i)},  # a second seeker turn in a row
                {"speaker": "supporter", "content": f"{rng.choice(REPLIES)} {rng.choice(REPLIES)} ({i})"},
                {"speaker": "seeker", "content": _sentence(rng, i + 1000)},
                {"speaker": "supporter", "content": f"{rng.choice(REPLIES)} (reply {i})"},
            ],
        })
    return dialogs


@pytest.fixture(scope="module")
def configured(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("configured")
    rng = random.Random(5)
    root = LocalDataRoot(tmp / "root")

    dialogs = _esconv_like(rng, 24)
    dialogs.append(json.loads(json.dumps(dialogs[3])))  # an exact duplicate: removed by dedup
    dialogs.append({"situation": "x", "dialog": [{"speaker": "narrator", "content": "Once."},
                                                 {"speaker": "supporter", "content": "Hi."}]})  # unknown_role
    root.write_text("sources/peer_support/esconv.json", json.dumps(dialogs, indent=1))

    forum = pa.table({
        "id": list(range(12)),
        "subject": [f"Question {i} about {rng.choice(CAUSES)}" for i in range(12)],
        "body": [_sentence(rng, i + 2000) if i % 3 else None for i in range(12)],
        "reply": [f"{rng.choice(REPLIES)} {_sentence(rng, i + 3000)}" if i != 5 else None for i in range(12)],
    })
    (tmp / "root" / "sources" / "forum_parquet").mkdir(parents=True)
    pq.write_table(forum, tmp / "root" / "sources" / "forum_parquet" / "part-0.parquet", row_group_size=5)

    datasets = pytest.importorskip("datasets")
    logs = [{"turns": [{"who": "speaker", "said": _sentence(rng, i + 4000)},
                       {"who": "listener", "said": f"{rng.choice(REPLIES)} (listener {i})"}]} for i in range(8)]
    logs[2]["turns"].append({"who": "listener", "said": "And another thing."})  # consecutive_turns: quarantine
    datasets.Dataset.from_list(logs).save_to_disk(str(tmp / "root" / "sources" / "listener_logs" / "saved"))

    packaged = resources.files("pixel_assets.config").joinpath("families.yaml").read_text("utf-8")
    registry_path = tmp / "families.yaml"
    registry_path.write_text(packaged.rstrip("\n") + "\n" + NEW_FAMILIES_YAML)
    mp = pytest.MonkeyPatch()
    mp.setenv("PIXEL_REGISTRY", str(registry_path))  # what dedup's family order reads too
    registry = load_registry()
    written = {"peer_support": len(dialogs), "forum_parquet": forum.num_rows, "listener_logs": len(logs)}
    planted = {"peer_support": {"unknown_role": 1}, "forum_parquet": {"empty_content": 1},
               "listener_logs": {"consecutive_turns": 1}}
    yield {"root": root, "registry": registry, "written": written, "planted": planted}
    mp.undo()


@pytest.fixture(scope="module")
def ingested(configured):
    registry, root = configured["registry"], configured["root"]
    data_root = DataRootResource(local_path=str(root.path))
    families = [registry[name] for name in configured["written"]]
    result = dg.materialize(
        [build_ingest_asset(f) for f in families],
        resources={"data_root": data_root, "io_manager": FrameIOManager(data_root=data_root)},
    )
    assert result.success
    out = {}
    for family in families:
        [meta] = [m.metadata for m in result.asset_materializations_for_node(f"ingest_{family.name}")
                  if m.asset_key == normalized_key(family.name)]
        out[family.name] = {
            "meta": {k: v.value for k, v in meta.items() if isinstance(v.value, (int, bool))},
            "normalized": root.read_parquet(f"assets/{'/'.join(normalized_key(family.name).path)}.parquet"),
            "quarantine": root.read_parquet(f"assets/{'/'.join(quarantine_key(family.name).path)}.parquet"),
        }
    return out


def test_each_new_source_is_read_whole_with_the_planted_rejects(configured, ingested):
    for name, written in configured["written"].items():
        meta, quarantine = ingested[name]["meta"], ingested[name]["quarantine"]
        assert meta["read"] == written == meta["valid"] + meta["quarantined"], name
        assert dict(quarantine.group_by("reason").len().iter_rows()) == configured["planted"][name], name
    assert ingested["peer_support"]["meta"]["merged_turns"] == configured["written"]["peer_support"] - 1
    assert set(ingested["forum_parquet"]["quarantine"].get_column("location")) == {"row 6"}


def test_the_dialog_options_shape_the_records(ingested):
    records = [json.loads(r) for r in ingested["peer_support"]["normalized"].get_column("record")]
    roles = [[m["role"] for m in r["messages"]] for r in records]
    assert all(r == ["system", "user", "assistant", "user", "assistant"] for r in roles)
    first = records[0]
    assert first["messages"][0]["content"].startswith("situation: Feeling ")
    assert first["messages"][1]["content"].startswith("Hello.\n\nSince ")
    assert first["metadata"]["emotion_type"] in ("anxiety", "sadness", "anger") and first["metadata"]["merged_turns"] == 1
    forum = [json.loads(r) for r in ingested["forum_parquet"]["normalized"].get_column("record")]
    assert forum[0]["messages"][0]["content"].startswith("Question 0 about ")  # a null body is skipped
    assert "\n\nSince " in forum[1]["messages"][0]["content"]


def test_they_compile_and_nothing_is_lost(configured, ingested):
    from pixel_assets.lib.compiled import build_compiled_dataset, publish_compiled_dataset, read_manifest
    from pixel_assets.lib.dedup import dedup_records
    from pixel_assets.lib.pii import PiiScrubber, scrub_frame
    from pixel_assets.lib.splits import assign_splits

    registry, root, names = configured["registry"], configured["root"], list(configured["written"])
    scrubber = PiiScrubber()
    clean, review = [], {}
    for name in names:
        scrubbed = scrub_frame(ingested[name]["normalized"], family=name, scrubber=scrubber)
        clean.append(scrubbed.clean)
        review[name] = scrubbed.review.height
    deduped = dedup_records(pl.concat(clean))
    split_frame = assign_splits(deduped.kept, registry)
    compiled = build_compiled_dataset(split_frame, registry, shard_max_bytes=200_000, validate_sample=None)
    publish_compiled_dataset(compiled, root)
    manifest = read_manifest(root)

    removed = deduped.removed
    count = lambda frame, name, **eq: frame.filter(  # noqa: E731
        pl.all_horizontal(pl.col("source_family") == name, *[pl.col(k) == v for k, v in eq.items()])).height
    report = family_accounting(
        names,
        valid={n: ingested[n]["normalized"].height for n in names},
        quarantined={n: ingested[n]["quarantine"].height for n in names},
        exact_dups={n: count(removed, n, reason="duplicate_removed") for n in names},
        near_dups={n: count(removed, n, reason="near_duplicate_removed") for n in names},
        requires_review=review,
        compiled={n: v["conversations"] for n, v in manifest["source_families"].items()},
    )
    assert report["balanced"], report
    for row in report["families"]:
        assert row["read"] == configured["written"][row["family"]]  # against what was written
        assert row["compiled"] > 0, row
    assert report["families"][0]["exact_dups"] >= 1  # the planted duplicate dialog
