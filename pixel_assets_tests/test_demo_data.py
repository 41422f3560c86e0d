"""The seeded demo-data generator: shapes, paths, determinism and the planted-data plan.

The files are parsed here with a small reference reader of the SPEC §2 shapes, independent of
the ingest loaders, so the plan is checked against the bytes actually written.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import random
from collections import Counter
from typing import Any

import ftfy
import pytest

from pixel_assets.lib import contract
from pixel_assets.lib.demo_data import (
    PLAN_KEY,
    DemoPlan,
    generate_demo_sources,
    jaccard,
    load_plan,
    shingles,
)
from pixel_assets.lib.ingest import clean_text, ingest_family
from pixel_assets.lib.language import foreign_language
from pixel_assets.lib.registry import load_registry
from pixel_assets.lib.storage import LocalDataRoot

SCALE = 0.25
USER = {"user", "human", "client", "patient"}
ASSISTANT = {"assistant", "gpt", "bot", "therapist", "counselor"}


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    root = LocalDataRoot(tmp_path_factory.mktemp("demo"))
    plan = generate_demo_sources(root, seed=11, scale=SCALE)
    return root, plan


def _role(raw: Any) -> str | None:
    if raw == "system":
        return "system"
    if raw in USER:
        return "user"
    if raw in ASSISTANT:
        return "assistant"
    return None


def _turns(turns: Any, role_key: str, text_key: str) -> list[dict[str, str]] | str:
    """Normalized messages, or the quarantine reason this reference reader expects."""
    if not isinstance(turns, list):
        return "wrong_types"
    out = []
    for t in turns:
        if not isinstance(t, dict) or not isinstance(t.get(text_key), str):
            return "wrong_types"
        role = _role(t.get(role_key))
        if role is None:
            return "unknown_role"
        if not t[text_key].strip():
            return "empty_content"
        out.append({"role": role, "content": t[text_key]})
    if not any(m["role"] in ("user", "assistant") for m in out):
        return "no_user_or_assistant_turn"
    return out


def _fields(obj: dict, pairs: list[tuple[str, str]]) -> list[dict[str, str]] | str:
    out = []
    for role, key in pairs:
        value = obj.get(key)
        if not isinstance(value, str):
            return "wrong_types"
        if not value.strip():
            return "empty_content"
        out.append({"role": role, "content": value})
    return out


def _parse_object(fmt: str, obj: Any) -> list[dict[str, str]] | str:
    if fmt == "chatml":
        return _turns(obj.get("messages"), "role", "content")
    if fmt == "client_therapist":
        return _turns(obj.get("conversation"), "role", "content")
    if fmt == "sharegpt":
        return _turns(obj.get("conversations"), "from", "value")
    if fmt == "context_response":
        return _fields(obj, [("user", "Context"), ("assistant", "Response")])
    if fmt == "instruction":
        out_key = "output" if "output" in obj else "response"
        res = _fields(obj, [("user", "instruction"), ("assistant", out_key)])
        if isinstance(res, list) and obj.get("input"):
            res[0]["content"] += "\n\n" + obj["input"]
        return res
    if fmt == "cot_qa":
        res = _fields(obj, [("user", "question"), ("assistant", "answer")])
        reasoning = (obj.get("metadata") or {}).get("reasoning")
        if isinstance(res, list) and reasoning:
            res[1]["content"] = reasoning + "\n\n" + res[1]["content"]
        return res
    if fmt == "edge_case_prompt_response":
        return _fields(obj, [("assistant", "prompt"), ("user", "response")])
    if fmt == "preference_pairs":
        res = _fields(obj, [("user", "prompt"), ("assistant", "chosen")])
        if isinstance(res, list) and not isinstance(obj.get("rejected"), str):
            return "wrong_types"
        return res
    raise AssertionError(fmt)


def read_source(root, key: str, fmt: str) -> list[tuple[str, list[dict[str, str]] | str]]:
    """(location, messages | expected quarantine reason) for every record of one file."""
    data = root.read_bytes(key)
    if fmt == "transcripts":
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return [("file", "undecodable_bytes")]
        return [("file", [{"role": "assistant", "content": text}] if text.strip() else "unreadable_source")]
    if fmt in ("marker_text_csv", "qa_csv"):
        csv.field_size_limit(1 << 30)
        rows = list(csv.DictReader(io.StringIO(data.decode("utf-8"))))
        out = []
        for i, row in enumerate(rows, 1):
            if fmt == "qa_csv":
                question = f"{row['questionTitle']}\n\n{row['questionText']}"
                answer = clean_text(row["answerText"], html=True)
                messages = [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
                if not (clean_text(question) and answer):
                    messages = "empty_content"
                elif foreign_language(m["content"] for m in messages):  # the language policy (lib/language.py)
                    messages = "language"
                out.append((f"row {i}", messages))
                continue
            text = row["text"]
            if not text.strip():
                out.append((f"row {i}", "empty_content"))
                continue
            messages = []
            for line in text.split("\n"):
                marker, _, rest = line.partition(":")
                if marker in ("human", "gpt"):
                    messages.append({"role": "user" if marker == "human" else "assistant", "content": rest})
                elif messages:
                    messages[-1]["content"] += "\n" + line
            if any(not m["content"].strip() for m in messages):
                out.append((f"row {i}", "empty_content"))
            else:
                out.append((f"row {i}", messages or "no_user_or_assistant_turn"))
        return out
    if key.endswith(".jsonl"):
        out = []
        for i, line in enumerate(data.split(b"\n")[:-1], 1):
            if len(line) > 1_000_000:
                out.append((f"line {i}", "oversize_record"))
                continue
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError:
                out.append((f"line {i}", "undecodable_bytes"))
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError:
                out.append((f"line {i}", "invalid_json"))
                continue
            out.append((f"line {i}", _parse_object(fmt, obj)))
        return out
    return [(f"item {i}", _parse_object(fmt, obj)) for i, obj in enumerate(json.loads(data.decode("utf-8")), 1)]


def parse_all(root, registry) -> dict[str, dict[tuple[str, str], list[dict[str, str]] | str]]:
    """family -> {(key, location): messages | reason}."""
    out: dict[str, dict] = {}
    for family in registry.families:
        records = out.setdefault(family.name, {})
        for source in family.sources:
            for key in root.glob(source.path):
                for location, parsed in read_source(root, key, source.format):
                    records[(key, location)] = parsed
    return out


@pytest.fixture(scope="module")
def parsed(generated):
    root, _ = generated
    return parse_all(root, load_registry())


def test_same_seed_same_bytes_and_other_seed_differs(tmp_path):
    a, b, c = (LocalDataRoot(tmp_path / n) for n in "abc")
    generate_demo_sources(a, seed=3, scale=0.05)
    generate_demo_sources(b, seed=3, scale=0.05)
    generate_demo_sources(c, seed=4, scale=0.05)
    keys = a.list_keys()
    assert keys == b.list_keys()
    assert all(a.read_bytes(k) == b.read_bytes(k) for k in keys)
    assert any(a.read_bytes(k) != c.read_bytes(k) for k in keys if c.exists(k) and not k.endswith(("LICENSE", ".csv")))


def test_every_registry_source_glob_matches_a_written_file(generated):
    root, plan = generated
    registry = load_registry()
    for family in registry.families:
        for source in family.sources:
            assert root.glob(source.path), f"{family.name}: nothing matches {source.path}"
        assert plan.families[family.name].valid > 0
    assert root.exists(PLAN_KEY) and not root.glob("sources/**/demo_plan.json")
    assert root.exists("sources/professional_therapeutic/counsel_chat/LICENSE")


def test_plan_round_trips_and_matches_the_files(generated, parsed):
    root, plan = generated
    assert load_plan(root) == plan
    assert isinstance(plan, DemoPlan)
    for family, records in parsed.items():
        fam = plan.families[family]
        reasons = Counter(v for v in records.values() if isinstance(v, str))
        assert fam.records_written == len(records), family
        assert dict(reasons) == fam.malformed, family
        assert fam.valid == len(records) - sum(reasons.values()), family
    # every quarantine reason a source shape can express is planted somewhere
    planted = set().union(*(f.malformed for f in plan.families.values()))
    # (consecutive_turns needs a source option the demo registry does not set)
    assert set(contract.QUARANTINE_REASONS) - planted <= {"unreadable_source", "schema_violation", "consecutive_turns"}


def _ref_messages(parsed, ref) -> list[dict[str, str]]:
    messages = parsed[ref["family"]][(ref["key"], ref["location"])]
    assert isinstance(messages, list), ref
    return messages


def _hash(messages) -> str:
    return contract.content_hash([{"content": clean_text(m["content"])} for m in messages])


def test_planted_exact_duplicates_share_the_hash(generated, parsed):
    _, plan = generated
    assert plan.exact_duplicate_groups
    cross = 0
    for group in plan.exact_duplicate_groups:
        hashes = {_hash(_ref_messages(parsed, ref)) for ref in group["members"]}
        assert hashes == {group["content_hash"]}, group["group"]
        assert len(group["members"]) >= 2
        cross += len({ref["family"] for ref in group["members"]}) > 1
    assert cross >= 3


def test_no_unplanned_exact_duplicates(generated, parsed):
    _, plan = generated
    planted = {g["content_hash"] for g in plan.exact_duplicate_groups}
    seen = Counter(_hash(m) for recs in parsed.values() for m in recs.values() if isinstance(m, list))
    unplanned = {h for h, n in seen.items() if n > 1} - planted
    assert not unplanned


def test_near_duplicate_pairs_are_similar_but_not_identical(generated, parsed):
    _, plan = generated
    assert plan.near_duplicate_pairs
    for pair in plan.near_duplicate_pairs:
        a, b = _ref_messages(parsed, pair["a"]), _ref_messages(parsed, pair["b"])
        assert _hash(a) != _hash(b)
        assert jaccard(shingles(a), shingles(b)) >= 0.85
        words = sum(len(m["content"].split()) for m in a if m["role"] != "system")
        assert 150 <= words <= 300


def test_same_question_pairs_share_first_turn_only(generated, parsed):
    _, plan = generated
    assert plan.same_question_pairs
    for pair in plan.same_question_pairs:
        a, b = _ref_messages(parsed, pair["a"]), _ref_messages(parsed, pair["b"])
        assert contract.first_user_turn(a) == contract.first_user_turn(b)
        assert _hash(a) != _hash(b)
        assert jaccard(shingles(a), shingles(b)) < 0.5


def test_unrelated_conversations_have_low_shingle_similarity(generated, parsed):
    _, plan = generated
    related = set()
    for group in plan.exact_duplicate_groups:
        related.update((r["key"], r["location"]) for r in group["members"])
    for pair in plan.near_duplicate_pairs + plan.same_question_pairs:
        related.update((pair[s]["key"], pair[s]["location"]) for s in ("a", "b"))
    docs = [
        shingles(m)
        for family, recs in parsed.items()
        if family != "nemotron_generic"  # generic arithmetic, disabled in the registry
        for ref, m in recs.items()
        if isinstance(m, list) and ref not in related and "counsel_chat" not in ref[0]
    ]
    rng = random.Random(0)
    scores = [jaccard(*rng.sample(docs, 2)) for _ in range(3000)]
    assert max(scores) < 0.3
    assert sum(scores) / len(scores) < 0.02


def test_planted_pii_appears_where_the_plan_says(generated, parsed):
    _, plan = generated
    for kind in ("PERSON", "EMAIL_ADDRESS", "PHONE_NUMBER", "US_SSN", "STREET_ADDRESS"):
        assert plan.pii.get(kind), kind
    phone_formats = {"".join("9" if ch.isdigit() else ch for ch in p) for p in plan.pii["PHONE_NUMBER"]}
    assert len(phone_formats) >= 3
    for occ in plan.pii_occurrences:
        text = " ".join(m["content"] for m in _ref_messages(parsed, occ["ref"]))
        assert occ["value"] in text
    # creators' public names appear (allow-listed, not PII)
    persona = " ".join(m["content"] for m in itertools.chain.from_iterable(
        v for v in parsed["voice_persona"].values() if isinstance(v, list)))
    assert any(name in persona for name in plan.allow_listed_names)
    assert not set(plan.allow_listed_names) & set(plan.pii["PERSON"])


def test_encoding_issues_are_repairable(generated, parsed):
    _, plan = generated
    kinds = Counter(e["kind"] for e in plan.encoding_issues)
    assert kinds["mojibake"] and kinds["html"]
    for issue in plan.encoding_issues:
        text = " ".join(m["content"] for m in _ref_messages(parsed, issue["ref"]))
        if issue["kind"] == "mojibake":
            assert "â€" in text or "Ã" in text
            assert "â€" not in ftfy.fix_text(text)
        else:
            assert "<p>" in text


def test_family_character(parsed):
    long_running = [m for m in parsed["long_running_therapy"].values() if isinstance(m, list)]
    assert min(len(m) for m in long_running) >= 20
    transcripts = parsed["video_transcripts"]
    assert all(len(key.split("/")) == 4 for key, _ in transcripts)
    systems = Counter(m[0]["content"] for m in parsed["roleplay_simulator"].values()
                      if isinstance(m, list) and m[0]["role"] == "system")
    assert systems.most_common(1)[0][1] > 10  # a shared system prompt


def test_rejects_bad_scale(tmp_path):
    with pytest.raises(ValueError):
        generate_demo_sources(LocalDataRoot(tmp_path), scale=0)


def test_ingest_quarantines_exactly_the_planted_malformed_records(generated):
    """The real loaders over the demo sources: counts per reason and every planted record's
    hash agree with the plan."""
    root, plan = generated
    by_location: dict[tuple[str, str], str] = {}
    for family in load_registry().families:
        if not family.enabled:
            continue
        result = ingest_family(family, root)
        fam = plan.families[family.name]
        assert result.read == fam.records_written, family.name
        assert result.per_reason == fam.malformed, family.name
        for record in contract.frame_to_records(result.records):
            meta = record["metadata"]
            by_location[(meta["source_key"], meta["source_location"])] = meta["content_hash"]
    refs = [m for g in plan.exact_duplicate_groups for m in g["members"]]
    refs += [p[s] for p in plan.near_duplicate_pairs + plan.same_question_pairs for s in ("a", "b")]
    refs += [o["ref"] for o in plan.pii_occurrences]
    for ref in refs:
        if ref["family"] == "nemotron_generic":
            continue
        assert by_location[(root.uri(ref["key"]), ref["location"])] == ref["content_hash"], ref


def test_writes_through_the_data_root_so_s3_works(tmp_path, monkeypatch):
    """Same bytes on S3 (moto, in process) as on disk: the generator only uses DataRoot."""
    import boto3
    from moto import mock_aws

    from pixel_assets.lib.storage import S3DataRoot

    for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "PIXEL_S3_ENDPOINT_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    local = LocalDataRoot(tmp_path)
    generate_demo_sources(local, seed=5, scale=0.05)
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="demo-bucket")
        s3 = S3DataRoot(client, "demo-bucket", "raw")
        generate_demo_sources(s3, seed=5, scale=0.05)
        assert s3.list_keys() == local.list_keys()
        for key in (PLAN_KEY, *local.glob("sources/cptsd/*.jsonl"), *local.glob("sources/sarcasm/*.json")):
            assert s3.read_bytes(key) == local.read_bytes(key)
