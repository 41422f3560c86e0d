"""Held-out evaluation per family, the forgetting check and the reviewer's probe table."""

from __future__ import annotations

import json
import math

import pytest

from pixel_assets.lib.storage import LocalDataRoot
from pixel_assets.lib.training.evaluation import (
    EVALUATION_KEY, evaluate_adapters, evaluate_records, evaluation_table, split_test_records, table_markdown,
    table_metadata, write_evaluation,
)
from pixel_assets.lib.training.forgetting import evaluate_stage_vals, forgetting_check, forgetting_regressions
from pixel_assets.lib.training.probes import ProbeError, ProbeSet, answer_probes, load_probes, probe_table
from pixel_assets.lib.training.sampling import SamplingConfig
from pixel_assets_tests.pref_helpers import build_adapter, build_base, degenerate_records, records, train_adapter

HOLDOUT_FAMILIES = ("edge_case_crisis", "voice_persona", "long_running_therapy", "sarcasm")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny base with sharp random logits; stage1 = an adapter trained on stage-1 style records,
    stage2 = stage1 trained a little further on other records (a normal next stage)."""
    from pixel_assets.lib.training.models import load_tokenizer

    tmp = tmp_path_factory.mktemp("eval")
    base = build_base(tmp / "base", initializer_range=0.5)
    fresh = build_adapter(base, tmp / "fresh", scale=0.0)
    stage1 = train_adapter(base, fresh, tmp / "stage1", records("professional_therapeutic", "train", 8), steps=30)
    stage2 = train_adapter(base, stage1, tmp / "stage2", records("cptsd", "train", 8, seed=3), steps=10, lr=1e-3)
    return {"base": base, "tokenizer": load_tokenizer(base), "tmp": tmp, "stage1": stage1, "stage2": stage2}


def _test_split():
    recs = records("edge_case_crisis", "test", 3, holdout="family")
    for fam in ("voice_persona", "long_running_therapy", "sarcasm"):
        recs += records(fam, "test", 2, holdout="slice") + records(fam, "test", 2, seed=1)
    recs += records("cptsd", "test", 2) + records("cptsd", "test", 1, seed=2, holdout="group")
    return recs + records("cptsd", "train", 5) + records("edge_case_crisis", "val", 2)


def test_test_records_are_split_into_hard_holdouts_group_holdouts_and_ordinary_test_records():
    sections = split_test_records(_test_split())
    assert list(sections) == ["holdout", "group_holdout", "test"]
    assert set(sections["holdout"]) == set(HOLDOUT_FAMILIES)
    assert len(sections["holdout"]["edge_case_crisis"]) == 3  # the val-split records are not test records
    # A record in test only because its group holds a held-out record is reported on its own, not
    # as an ordinary test record.
    assert {f: len(v) for f, v in sections["group_holdout"].items()} == {"cptsd": 1}
    assert all(r["metadata"]["holdout"] == "group" for r in sections["group_holdout"]["cptsd"])
    assert {f: len(v) for f, v in sections["test"].items()} == {
        "voice_persona": 2, "long_running_therapy": 2, "sarcasm": 2, "cptsd": 2}
    for fams in sections.values():
        assert all(r["metadata"]["split"] == "test" for recs in fams.values() for r in recs)


def test_loss_is_on_assistant_tokens_only(tiny):
    from peft import PeftModel

    from pixel_assets.lib.training.models import load_base_model

    tok = tiny["tokenizer"]
    model = PeftModel.from_pretrained(load_base_model(tiny["base"]), str(tiny["stage1"]))
    rec = records("cptsd", "test", 1, turns=2, system=True)[0]
    fig = evaluate_records(model, tok, [rec])
    assistant_tokens = sum(len(tok(m["content"] + "<|im_end|>", add_special_tokens=False)["input_ids"])
                           for m in rec["messages"] if m["role"] == "assistant")
    assert fig["tokens"] == assistant_tokens and fig["records"] == 1
    assert fig["perplexity"] == pytest.approx(math.exp(fig["loss"]))
    # Longer user turns change the context, never the number of tokens that carry loss.
    longer = json.loads(json.dumps(rec))
    longer["messages"][1]["content"] += " and this goes on for a while longer than before"
    assert evaluate_records(model, tok, [longer])["tokens"] == assistant_tokens
    length = len(tok.apply_chat_template(rec["messages"], tokenize=True, return_dict=True)["input_ids"])
    cut = evaluate_records(model, tok, [rec], max_length=length - 3)
    # The last 3 tokens: the final reply's last content token, <|im_end|> (both loss), "\n" (none).
    assert cut["truncated"] == 1 and cut["tokens"] == assistant_tokens - 2
    none_left = evaluate_records(model, tok, [rec], max_length=5)
    assert none_left["records"] == 0 and none_left["without_loss_tokens"] == 1 and none_left["loss"] is None


def test_final_evaluation_table_has_a_row_per_holdout_family_and_a_column_per_checkpoint(tiny, tmp_path):
    sections = split_test_records(_test_split())
    results = evaluate_adapters(tiny["base"], {"base_model": None, "stage1_foundation": tiny["stage1"],
                                               "final_model": tiny["stage2"]}, tiny["tokenizer"], sections)
    table = evaluation_table(results)
    assert table["checkpoints"] == ["base_model", "stage1_foundation", "final_model"]
    assert set(table["sections"]["holdout"]) == set(HOLDOUT_FAMILIES)
    crisis = table["sections"]["holdout"]["edge_case_crisis"]
    assert set(crisis) == set(table["checkpoints"]) and all(c["records"] == 3 for c in crisis.values())
    assert crisis["base_model"]["loss"] != crisis["final_model"]["loss"]  # adapters are really applied
    # The base is restored between adapters: evaluating stage1 alone gives the same figure.
    alone = evaluate_adapters(tiny["base"], {"stage1_foundation": tiny["stage1"]}, tiny["tokenizer"], sections)
    assert alone["stage1_foundation"]["holdout"]["sarcasm"]["loss"] == pytest.approx(
        results["stage1_foundation"]["holdout"]["sarcasm"]["loss"], rel=1e-5)
    md = table_markdown(table)
    assert md.count("| holdout |") == 4 and "| test | cptsd |" in md
    meta = table_metadata(table)
    assert isinstance(meta["holdout/edge_case_crisis/final_model/perplexity"], float)
    root = LocalDataRoot(tmp_path)
    key = write_evaluation(root, table, generated_by="test")
    assert key == EVALUATION_KEY == "training/evaluation/final_evaluation.json"
    saved = json.loads(root.read_text(key))
    assert saved["generated_by"] == "test" and set(saved["sections"]["holdout"]) == set(HOLDOUT_FAMILIES)


def test_forgetting_check_fails_on_a_planted_regression_and_passes_otherwise(tiny):
    from pixel_assets.lib.training.align import load_policy

    tok = tiny["tokenizer"]
    vals = {"pretrained": [{"text": r["messages"][1]["content"]} for r in records("video_transcripts", "val", 4)],
            "stage1_foundation": records("professional_therapeutic", "val", 4)}
    # Each earlier stage's own value (both measured on the stage-1 checkpoint here, as a stand-in).
    own = evaluate_stage_vals(load_policy(tiny["base"], tiny["stage1"], trainable=False), tok, vals)
    normal = evaluate_stage_vals(load_policy(tiny["base"], tiny["stage2"], trainable=False), tok, vals)
    passed, md, meta = forgetting_check("stage2_therapeutic_expertise", normal, own, max_rise=0.1)
    assert passed and meta["regressions"] == 0 and "REGRESSED" not in md, md
    # Planted: stage 1 trained further on one repeated word forgets what it knew.
    planted = train_adapter(tiny["base"], tiny["stage1"], tiny["tmp"] / "planted", degenerate_records(4), steps=10)
    broken = evaluate_stage_vals(load_policy(tiny["base"], planted, trainable=False), tok, vals)
    passed, md, meta = forgetting_check("stage2_therapeutic_expertise", broken, own, max_rise=0.1)
    assert not passed and meta["regressions"] == 2, md
    assert "stage1_foundation" in md.split("\n")[0] and "REGRESSED" in md
    assert meta["stage1_foundation/rise_share"] > 0.1
    found = forgetting_regressions(broken, own, 0.1)
    assert {r["stage"] for r in found} == {"pretrained", "stage1_foundation"}
    assert all(r["loss"] > r["own_loss"] * 1.1 for r in found)
    # The threshold is a setting: a tolerance above the measured rise passes the same figures.
    worst = max(r["rise_share"] for r in found)
    assert forgetting_check("x", broken, own, max_rise=worst + 0.01)[0]
    with pytest.raises(ValueError, match="max_rise"):
        forgetting_regressions(broken, own, -1)


def test_probe_file_covers_the_required_situations():
    probes = load_probes()
    cats = {p.category for p in probes.probes}
    assert {"therapy_opening", "crisis", "long_session", "sarcasm", "roleplay"} <= cats
    assert len({p.id for p in probes.probes}) == len(probes.probes)
    assert any(len(p.messages) > 2 for p in probes.probes if p.category == "long_session")


def test_probe_file_errors_name_the_probe(tmp_path):
    bad = tmp_path / "probes.yaml"
    bad.write_text("probes:\n  - id: ok_one\n    messages: [{role: user, content: hi}]\n"
                   "  - id: no_user_last\n    messages: [{role: assistant, content: hi}]\n")
    with pytest.raises(ProbeError, match="no_user_last"):
        load_probes(bad)


def test_probe_answers_are_scrubbed_before_they_are_shown(tiny):
    planted = "jordan.example@mailhost.org"
    probes = load_probes()

    def echo(model, tokenizer, prompts, sampling):  # a "model" that echoes a planted email
        return [[f"Sure, write to me at {planted} any time."] for _ in prompts]

    answers = answer_probes(None, tiny["tokenizer"], probes, generate=echo)
    assert len(answers) == len(probes.probes)
    assert all(planted not in a["answer"] and "<EMAIL_ADDRESS_1>" in a["answer"] for a in answers)
    table = probe_table(answers, None, stage="stage2", previous_stage="stage1")
    assert planted not in table and "&lt;EMAIL_ADDRESS_1&gt;" in table
    assert table.splitlines()[0] == "| prompt | stage2 | stage1 |"


def test_probe_table_puts_the_previous_stage_beside_this_one():
    cur = [{"id": "a", "prompt": "how | are you", "answer": "fine\nthanks"}, {"id": "b", "prompt": "p", "answer": ""}]
    prev = [{"id": "a", "answer": "older answer"}]
    lines = probe_table(cur, prev).splitlines()
    assert lines[2] == "| how \\| are you | fine thanks | older answer |"
    assert lines[3] == "| p | (empty) | — |"


def test_real_tiny_model_answers_probes_with_seeded_decoding(tiny):
    from pixel_assets.lib.training.align import load_policy

    model = load_policy(tiny["base"], tiny["stage1"], trainable=False)
    probes = ProbeSet(load_probes().probes[:3], SamplingConfig(temperature=0.7, max_new_tokens=12))
    seen = []

    def scrub(texts):
        seen.extend(texts)
        return [t.upper() for t in texts]

    first = answer_probes(model, tiny["tokenizer"], probes, seed=5, scrub=scrub)
    again = answer_probes(model, tiny["tokenizer"], probes, seed=5, scrub=scrub)
    assert first == again and len(first) == len(probes.probes)
    assert [a["answer"] for a in first] == [t.upper() for t in seen[: len(first)]]  # shown = scrubbed
    assert any(a["answer"] for a in first)
