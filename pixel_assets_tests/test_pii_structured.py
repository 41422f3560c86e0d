"""find_structured_pii (regex + validators, no NER) and the labeled-set / evaluation helpers."""

from __future__ import annotations

import pytest

from pixel_assets.lib.pii.detection import Detection
from pixel_assets.lib.pii.evaluate import evaluate
from pixel_assets.lib.pii.labeled import EVAL_TEMPLATES, TUNE_TEMPLATES, labeled_set
from pixel_assets.lib.pii.structured import find_structured_pii

PLANTED = {
    "EMAIL_ADDRESS": "jordan.miles@example.org",
    "PHONE_NUMBER": "(415) 555-0132",
    "US_SSN": "536-22-8726",
    "CREDIT_CARD": "4111 1111 1111 1111",
    "IP_ADDRESS": "203.0.113.45",
}


@pytest.mark.parametrize("etype,value", list(PLANTED.items()))
def test_each_structured_type_is_found_with_exact_span(etype, value):
    text = f"Since March I've been anxious. Anyway, it is {value} if you need it."
    [dets] = find_structured_pii([text])
    assert [(d.entity_type, text[d.start : d.end]) for d in dets] == [(etype, value)]


def test_durations_dates_and_placeholders_are_not_structured_pii():
    texts = [
        "I've felt this way for 8 years, since March 2019, and on 3/14 it got worse.",
        "Reach me at <EMAIL_ADDRESS_1> or <PHONE_NUMBER_2>; my card is <CREDIT_CARD_1>.",
        "",
    ]
    assert find_structured_pii(texts) == [[], [], []]


def test_public_crisis_lines_are_not_structured_pii_but_other_numbers_are():
    text = "Call 1-800-273-8255 (or 800-273-TALK) any time; my own cell is 404-293-5654."
    [dets] = find_structured_pii([text])
    assert [text[d.start : d.end] for d in dets] == ["404-293-5654"]
    [dets] = find_structured_pii([text], public_numbers=frozenset())
    assert "1-800-273-8255" in [text[d.start : d.end] for d in dets]


def test_invalid_card_number_fails_luhn_and_is_not_reported():
    assert find_structured_pii(["card 4111 1111 1111 1112 please"]) == [[]]


def test_labeled_set_gold_spans_point_at_their_values_and_are_seeded():
    a = labeled_set(200, seed=5)
    assert a == labeled_set(200, seed=5)
    assert a != labeled_set(200, seed=6)
    for sample in a:
        for s in sample["spans"]:
            assert sample["full_text"][s["start_position"] : s["end_position"]] == s["entity_value"]
    assert not set(EVAL_TEMPLATES) & set(TUNE_TEMPLATES)


def test_evaluate_counts_overlaps_per_type():
    samples = [
        {"full_text": "x" * 40, "spans": [
            {"entity_type": "PERSON", "entity_value": "?", "start_position": 0, "end_position": 10},
            {"entity_type": "EMAIL_ADDRESS", "entity_value": "?", "start_position": 20, "end_position": 30},
            {"entity_type": "DATE_TIME", "entity_value": "?", "start_position": 32, "end_position": 35},
        ]},
    ]
    dets = [[Detection(2, 8, "PERSON", 0.9), Detection(20, 30, "PHONE_NUMBER", 0.9),
             Detection(36, 39, "PERSON", 0.9)]]
    result = evaluate(samples, dets)
    person = result["per_type"]["PERSON"]
    assert (person["precision"], person["recall"], person["support"]) == (0.5, 1.0, 1)
    assert result["per_type"]["EMAIL_ADDRESS"]["recall"] == 0.0
    assert result["per_type"]["PHONE_NUMBER"]["precision"] == 0.0
    assert result["ignored_gold_types"] == {"DATE_TIME": 1}
    assert result["overall"]["recall"] == 0.5


@pytest.mark.slow
def test_bench_pii_recall_is_at_least_naive_presidios_on_both_labeled_sets():
    """The speed-up must not be bought with missed PII: on the templated and on the informal
    labeled set the project's recall is at least naive presidio's (computed from detections, in
    the same run), and the cache re-compilation hits every unchanged conversation."""
    from pixel_assets.lib.pii.bench import bench_pii

    result = bench_pii(6, recompile_conversations=100, recall_samples=80)
    naive, ours = result["naive"], result["project"]
    for name in ("labeled", "informal"):
        assert ours[f"{name}_recall"] >= naive[f"{name}_recall"], (name, ours, naive)
        assert ours[f"{name}_person_recall"] >= naive[f"{name}_person_recall"], (name, ours, naive)
    assert ours["informal_person_recall"] >= 0.8  # the capitalization-only detector got ~0.5 here
    assert (result["recompile"]["cache_hits"], result["recompile"]["cache_misses"]) == (100, 1)


def test_email_validation_is_offline_and_silent():
    """tldextract must use its bundled snapshot: no connection attempt, nothing on stderr."""
    import subprocess
    import sys

    code = (
        "import socket\n"
        "def no_net(*a, **k): raise OSError('network attempted')\n"
        "socket.socket.connect = no_net; socket.create_connection = no_net\n"
        "from pixel_assets.lib.pii import find_structured_pii\n"
        "print(len(find_structured_pii(['write to a.b@example.co.uk'])[0]))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-500:]
    assert proc.stdout.strip() == "1"
    assert proc.stderr == ""
