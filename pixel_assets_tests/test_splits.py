"""Split assignment (stable, leakage-free, holdouts) and the leakage report."""

from __future__ import annotations

import functools
import json

import polars as pl
import pytest
import yaml
from importlib import resources

from pixel_assets import PIPELINE_NAME
from pixel_assets.lib.compiled.synthetic import exact_dedup, synthetic_records_frame
from pixel_assets.lib.contract import approx_tokens, content_hash, first_user_turn, record_errors, records_to_frame
from pixel_assets.lib.registry import load_registry, parse_registry
from pixel_assets.lib.leakage import leakage_report
from pixel_assets.lib.splits import assign_splits, first_user_turn_expr


@pytest.fixture(scope="module")
def registry():
    return load_registry()


@functools.lru_cache(maxsize=1)
def _default_registry():
    return load_registry()


def make_record(family: str, user: str | None, assistant: str, *, registry=None, system: str | None = None) -> dict:
    """A record following the record conventions (after the PII stage)."""
    messages = ([{"role": "system", "content": system}] if system else [])
    messages += ([{"role": "user", "content": user}] if user is not None else [])
    messages += [{"role": "assistant", "content": assistant}]
    fam = (registry or _default_registry())[family]
    return {
        "messages": messages,
        "metadata": {
            "source_family": family, "source_key": f"file:///data/{family}.jsonl",
            "content_hash": content_hash(messages), "license_tag": fam.license_tag, "phase": fam.phase,
            "original_format": fam.sources[0].format, "source_location": "line 1",
            "record_type": "conversation" if user is not None else "text",
            "conversation_length": len(messages), "total_tokens": approx_tokens(messages),
            "pii_status": "none_detected",
            "provenance": {
                "original_s3_key": f"file:///data/{family}.jsonl", "processing_pipeline": PIPELINE_NAME,
                "processed_at": "2026-01-01T00:00:00+00:00", "dedup_status": "unique",
                "processing_steps": ["ingest", "encoding_repair", "normalize", "pii_scrub", "dedup"],
            },
        },
    }


def _split_of(frame: pl.DataFrame) -> dict[str, str]:
    return dict(frame.select("content_hash", "split").iter_rows())


def _registry_with(**holdouts) -> object:
    """The packaged registry with some families' holdout policy replaced."""
    data = yaml.safe_load(resources.files("pixel_assets.config").joinpath("families.yaml").read_text("utf-8"))
    for fam in data["families"]:
        if fam["name"] in holdouts:
            fam["holdout"] = holdouts[fam["name"]]
    return parse_registry(data)


def test_records_get_split_and_stay_schema_valid(registry):
    frame = records_to_frame([
        make_record("cptsd", "How do I cope?", "Breathe.", system="Be kind."),
        make_record("video_transcripts", None, "A transcript of a talk about grief."),
    ])
    out = assign_splits(frame, registry)
    assert set(out.columns) >= {"group_key", "split", "holdout"}
    for split, record_json in out.select("split", "record").iter_rows():
        record = json.loads(record_json)
        assert record["metadata"]["split"] == split
        assert record["metadata"]["provenance"]["processing_steps"][-1] == "split"
        assert record_errors(record) == []
    # Re-running on already split records neither duplicates keys nor appends "split" twice.
    again = assign_splits(out, registry)
    for record_json in again.get_column("record"):
        steps = json.loads(record_json)["metadata"]["provenance"]["processing_steps"]
        assert steps.count("split") == 1
    assert again.get_column("split").to_list() == out.get_column("split").to_list()
    assert again.get_column("record").to_list() == out.get_column("record").to_list()


def test_reassigning_split_records_rewrites_split_and_holdout_in_place(registry):
    frame = exact_dedup(synthetic_records_frame(500, registry, seed=4))
    first = assign_splits(frame, registry)
    second = assign_splits(first, registry, salt="other-salt")
    changed = 0
    for (s1, r1), (s2, r2) in zip(first.select("split", "record").iter_rows(), second.select("split", "record").iter_rows()):
        a, b = json.loads(r1), json.loads(r2)
        assert b["metadata"]["split"] == s2 and b["metadata"]["provenance"]["processing_steps"].count("split") == 1
        a["metadata"].pop("split"), b["metadata"].pop("split"), a["metadata"].pop("holdout"), b["metadata"].pop("holdout")
        assert a == b  # nothing else changed
        changed += s1 != s2
    assert changed > 0


def test_same_first_user_turn_never_straddles_splits(registry):
    # 200 questions, each answered three times (other family, other case and spacing).
    records = []
    for i in range(200):
        q = f"Question number {i}: why do I feel anxious at night?"
        records.append(make_record("cptsd", q, f"answer a {i}"))
        records.append(make_record("addiction", "  " + q.upper().replace(" ", "   "), f"answer b {i}"))
        records.append(make_record("experimental", q + "\n", f"answer c {i}", system="System prompt."))
    out = assign_splits(records_to_frame(records), registry)
    per_question = out.with_columns(q=pl.int_range(pl.len()) // 3).group_by("q").agg(
        pl.col("split").n_unique().alias("splits"), pl.col("group_key").n_unique().alias("keys")
    )
    assert per_question.get_column("splits").max() == 1
    assert per_question.get_column("keys").max() == 1
    assert out.get_column("split").n_unique() > 1  # groups do spread over splits
    assert leakage_report(out, registry)["first_user_turn_overlap"] == 0


def test_near_dup_cluster_and_content_hash_merge_groups(registry):
    a = make_record("cptsd", "first question alpha", "answer")
    b = make_record("addiction", "a different question beta", "answer two")
    c = make_record("video_transcripts", None, "transcript gamma")
    d = make_record("video_transcripts", None, "transcript delta")
    frame = records_to_frame([a, b, c, d]).with_columns(cluster_id=pl.Series([7, 7, None, None]))
    # Find a salt under which a and b would split apart on their own, then check the cluster joins them.
    for i in range(200):
        salt = f"s{i}"
        alone = assign_splits(records_to_frame([a, b]), registry, salt=salt)
        if alone.get_column("split").n_unique() == 2:
            break
    else:
        pytest.fail("no salt separates the two records")
    out = assign_splits(frame, registry, salt=salt)
    assert out.get_column("split")[0] == out.get_column("split")[1]
    assert out.get_column("group_key")[0] == out.get_column("group_key")[1]
    assert out.get_column("group_key")[2] != out.get_column("group_key")[3]  # null cluster = no merge


def test_assignment_is_stable_when_data_is_added_and_reordered(registry):
    base = exact_dedup(synthetic_records_frame(3000, registry, seed=1))
    more = exact_dedup(synthetic_records_frame(6000, registry, seed=2))
    before = _split_of(assign_splits(base, registry))
    combined = pl.concat([more, base.drop("cluster_id").with_columns(cluster_id=pl.col("content_hash"))])
    combined = combined.unique(subset="content_hash", keep="first").sample(fraction=1.0, shuffle=True, seed=3)
    after = _split_of(assign_splits(combined, registry))
    moved = [h for h, s in before.items() if h in after and after[h] != s]
    # Only a new holdout-family conversation sharing a first question may pull a group into test.
    assert all(after[h] == "test" for h in moved)
    assert len(moved) <= 0.01 * len(before)
    assert sum(1 for h in before if h in after) >= 0.95 * len(before)


def test_ledger_keeps_a_group_in_its_split_when_dedup_keeps_another_member(registry):
    """A new near-duplicate from an earlier file wins dedup's keep order; its own first question
    may hash to another split, but the group's history (the ledger) must keep it where it was."""
    from pixel_assets.lib.dedup import dedup_records
    from pixel_assets.lib.splits import split_ledger

    answer = " ".join(f"word{i}" for i in range(200))

    def rec(user: str, source_key: str) -> dict:
        r = make_record("cptsd", user, answer)
        r["metadata"]["source_key"] = source_key
        return r

    def compile_once(records, ledger=None):
        dedup = dedup_records(records_to_frame(records), family_order=registry.names)
        stats: dict = {}
        out = assign_splits(dedup.kept, registry, ledger=ledger, removed=dedup.removed, stats=stats)
        return out, dedup, stats

    original = rec("I cannot sleep at night, what should I do", "file:///b.jsonl")
    first, dedup, _ = compile_once([original])
    ledger = split_ledger(first, dedup.removed)
    moved_without_ledger = 0
    for i in range(60):
        variant = rec(f"I cannot sleep at night, what should I do {i}", "file:///a.jsonl")  # kept instead
        out, dedup, stats = compile_once([original, variant], ledger)
        assert dedup.removed.get_column("content_hash").to_list() == [original["metadata"]["content_hash"]]
        assert out.get_column("split").to_list() == first.get_column("split").to_list()
        assert (stats["groups_from_ledger"], stats["ledger_moves"]) == (1, 0)
        stateless, _, _ = compile_once([original, variant])
        moved_without_ledger += stateless.get_column("split")[0] != first.get_column("split")[0]
    assert moved_without_ledger > 0  # the scenario really moves groups when there is no history


def test_ledger_grows_with_removed_records_and_holdouts_still_win(registry):
    from pixel_assets.lib.splits import split_ledger

    base = exact_dedup(synthetic_records_frame(2000, registry, seed=4, families=["cptsd", "addiction"]))
    first = assign_splits(base, registry)
    removed = pl.DataFrame({"content_hash": ["sha256:" + "0" * 64], "duplicate_of": [first["content_hash"][0]]})
    ledger = split_ledger(first, removed)
    assert ledger.height == first.height + 1
    assert dict(ledger.select("content_hash", "split").iter_rows())["sha256:" + "0" * 64] == first["split"][0]
    # A ledger that says "train" for everything is obeyed, except where a holdout decides.
    all_train = ledger.with_columns(split=pl.lit("train"))
    crisis = records_to_frame([make_record("edge_case_crisis", first_user_turn_of(first, 0), "crisis answer")])
    stats: dict = {}
    again = assign_splits(pl.concat([base, exact_dedup(crisis)], how="diagonal_relaxed"), registry,
                          ledger=all_train, stats=stats)
    by_hash = _split_of(again)
    # A group never leaves train: the crisis record that asks the same question is kept out of
    # test and out of the dataset instead of pulling the group (trained on before) into test.
    crisis_hash = crisis.get_column("content_hash")[0]
    assert by_hash[first["content_hash"][0]] == "train"
    assert crisis_hash not in by_hash and set(by_hash.values()) == {"train"}
    assert stats["held_out_of_test"].get_column("content_hash").to_list() == [crisis_hash]
    assert stats["holdout_groups_pinned"] == 1
    # Without the ledger the same crisis record takes its group into test, as before.
    fresh: dict = {}
    alone = _split_of(assign_splits(pl.concat([base, exact_dedup(crisis)], how="diagonal_relaxed"), registry,
                                    stats=fresh))
    assert alone[crisis_hash] == "test" and alone[first["content_hash"][0]] == "test"
    assert fresh["held_out_of_test"].height == 0


def test_normal_path_never_puts_an_earlier_train_group_in_test(registry):
    """Two compiles through the ledger: new holdout records that ask questions trained on in the
    first compile never bring those groups into test."""
    from pixel_assets.lib.splits import split_ledger

    base = exact_dedup(synthetic_records_frame(1500, registry, seed=6, families=["cptsd", "addiction"]))
    first = assign_splits(base, registry)
    ledger = split_ledger(first)
    trained = first.filter(pl.col("split").is_in(["train", "val"]))
    crises = [make_record("edge_case_crisis", first_user_turn_of(trained, i), f"crisis answer {i}") for i in range(20)]
    stats: dict = {}
    second = assign_splits(pl.concat([base, exact_dedup(records_to_frame(crises))], how="diagonal_relaxed"),
                           registry, ledger=ledger, stats=stats)
    earlier = dict(ledger.select("content_hash", "split").iter_rows())
    moved = second.filter(pl.col("split") == "test").filter(
        pl.col("content_hash").map_elements(lambda h: earlier.get(h) in ("train", "val"), return_dtype=pl.Boolean))
    assert moved.height == 0
    assert stats["held_out_of_test"].height == 20


def test_leakage_report_measures_near_duplicates_across_splits(registry):
    """The near-dup figure is measured on the records as assigned (it used to read dedup's cluster
    ids, one per kept record, so it was zero by construction)."""
    answer = " ".join(f"word{i}" for i in range(120))
    a = make_record("cptsd", "how do I stop the panic", answer)
    b = make_record("cptsd", "how can I stop the panic", answer + " please")
    c = make_record("addiction", "something else entirely here", "a different answer altogether")
    from pixel_assets.lib.splits import set_split_in_records

    out = assign_splits(records_to_frame([a, b, c]), registry)

    def placed(*splits: str) -> pl.DataFrame:  # the split column and the record JSON both
        frame = out.with_columns(split=pl.Series(list(splits)), holdout=pl.lit("none"))
        return frame.with_columns(record=set_split_in_records(frame))

    assert leakage_report(placed("train", "test", "train"), registry)["near_dup_cluster_overlap"] == 1
    assert leakage_report(placed("train", "train", "test"), registry)["near_dup_cluster_overlap"] == 0


def first_user_turn_of(frame: pl.DataFrame, row: int) -> str:
    messages = json.loads(frame["record"][row])["messages"]
    return next(m["content"] for m in messages if m["role"] == "user")


def test_ratios_and_salt(registry):
    frame = exact_dedup(synthetic_records_frame(20000, registry, seed=5, families=["cptsd", "addiction"],
                                                shared_question_rate=0.0))
    out = assign_splits(frame, registry)
    shares = out.group_by("split").len().with_columns(share=pl.col("len") / pl.col("len").sum())
    share = dict(shares.select("split", "share").iter_rows())
    assert 0.88 < share["train"] < 0.92 and 0.04 < share["val"] < 0.06 and 0.04 < share["test"] < 0.06
    custom = assign_splits(frame, registry, ratios=(0.5, 0.25, 0.25))
    assert 0.45 < (custom.get_column("split") == "train").mean() < 0.55
    other_salt = assign_splits(frame, registry, salt="another-salt")
    assert (other_salt.get_column("split") != out.get_column("split")).sum() > 0
    with pytest.raises(ValueError, match="ratios"):
        assign_splits(frame, registry, ratios=(0.9, 0.1, 0.1))


def test_holdout_policies(registry):
    frame = exact_dedup(synthetic_records_frame(8000, registry, seed=9, shared_question_rate=0.02))
    crisis_q = "I am in crisis and need help right now"
    extra = records_to_frame([
        make_record("edge_case_crisis", crisis_q, "crisis answer"),
        make_record("cptsd", crisis_q.lower(), "a cptsd answer to the same question"),
    ])
    out = assign_splits(pl.concat([frame.drop("cluster_id"), extra]), registry)
    fam_split = out.select("source_family", "split", "holdout")
    assert fam_split.filter(pl.col("source_family") == "edge_case_crisis").get_column("split").unique().to_list() == ["test"]
    # The cptsd record asking the crisis question follows its group into test.
    tail = out.tail(1)
    assert tail.get_column("split").item() == "test" and tail.get_column("holdout").item() == "group"
    report = leakage_report(out, registry)
    # (report["ok"] also counts near-duplicates across splits, which exact_dedup leaves in place.)
    assert report["exact_overlap"] == report["first_user_turn_overlap"] == 0
    assert not any(report["holdout_violations"].values())
    for fam in ("voice_persona", "long_running_therapy", "sarcasm"):
        sl = report["holdout_slices"][fam]
        assert 0.14 < sl["held_out_fraction"] < 0.30, (fam, sl)
        held = fam_split.filter((pl.col("source_family") == fam) & pl.col("holdout").is_in(["slice", "group"]))
        assert held.get_column("split").unique().to_list() == ["test"]
    # Fractions come from the registry.
    out50 = assign_splits(frame, _registry_with(sarcasm={"mode": "test_slice", "fraction": 0.5}))
    sarcasm = out50.filter(pl.col("source_family") == "sarcasm")
    assert 0.42 < (sarcasm.get_column("holdout") == "slice").mean() < 0.58
    whole = assign_splits(frame, _registry_with(cptsd={"mode": "test_only"}))
    assert whole.filter(pl.col("source_family") == "cptsd").get_column("split").unique().to_list() == ["test"]


def test_leakage_report_detects_planted_leaks(registry):
    records = [make_record("cptsd", f"shared question {i}", f"answer {i} {j}") for i in range(30) for j in range(2)]
    records.append(make_record("edge_case_crisis", "unique crisis question", "x"))
    out = assign_splits(records_to_frame(records), registry)
    assert leakage_report(out, registry)["ok"]

    def force(frame: pl.DataFrame, row: int, split: str) -> pl.DataFrame:
        rec = json.loads(frame.get_column("record")[row])
        rec["metadata"]["split"] = split
        new = frame.get_column("record").scatter(row, json.dumps(rec))
        return frame.with_columns(record=new)

    first_split = json.loads(out.get_column("record")[0])["metadata"]["split"]
    leaked = force(out, 1, "val" if first_split != "val" else "train")
    report = leakage_report(leaked, registry)
    assert report["first_user_turn_overlap"] == 1 and not report["ok"]
    violated = force(out, out.height - 1, "train")
    report = leakage_report(violated, registry)
    assert report["holdout_violations"]["edge_case_crisis"] == 1 and not report["ok"]
    # An exact duplicate in two splits is reported too.
    dup = pl.concat([out.head(1), force(out.head(1), 0, "val" if first_split != "val" else "train")])
    assert leakage_report(dup, registry)["exact_overlap"] == 1


def test_bad_input_raises(registry):
    frame = records_to_frame([make_record("cptsd", "q", "a")])
    with pytest.raises(ValueError, match="not in the registry"):
        assign_splits(frame.with_columns(source_family=pl.lit("no_such_family")), registry)
    with pytest.raises(ValueError, match="lacks column"):
        assign_splits(frame.drop("content_hash"), registry)


@pytest.mark.parametrize("text", [
    "Hello   World", "  tabs\tand\nnewlines  ", "nbsp\u00a0here", "file\x1cseparator", "ÉCOLE Straße", "",
])
def test_first_user_turn_expr_matches_contract(text):
    messages = [{"role": "system", "content": "sys"}, {"role": "user", "content": text}, {"role": "user", "content": "2nd"}]
    frame = pl.DataFrame({"record": [json.dumps({"messages": messages, "metadata": {}})]})
    assert frame.select(first_user_turn_expr()).item() == first_user_turn(messages)
