"""Names in informal text: lowercase, accents, lowercase titles, sentence start; targets measured on
names the detector's list has never seen, and the capitalization-only detector fails them."""

from __future__ import annotations

import dataclasses

import pytest

from pixel_assets.lib.pii.evaluate import (
    INFORMAL_PERSON_RECALL,
    MAX_FALSE_DETECTIONS_PER_CLEAN_CONVERSATION,
    MIN_INFORMAL_PERSON_PRECISION,
    evaluate,
    evaluate_detector,
)
from pixel_assets.lib.pii.informal import EVAL_INFORMAL_TEMPLATES, TUNE_INFORMAL_TEMPLATES, informal_set
from pixel_assets.lib.pii.labeled import EVAL_TEMPLATES, clean_conversations, labeled_set
from pixel_assets.lib.pii.names import detection_names, eval_name_pool, is_eval_name
from pixel_assets.lib.pii.scrubber import PiiScrubber


@pytest.fixture(scope="module")
def scrubber():
    return PiiScrubber(n_process=1)


@pytest.fixture(scope="module")
def capitals_only(scrubber):
    """The detector as it was: NER only where a capital letter is, no context cues."""
    return PiiScrubber(dataclasses.replace(scrubber.config, restore_case=False, context_names=False), n_process=1)


def persons(scrubber, text):
    [dets] = scrubber.detect([text])
    return [text[d.start : d.end] for d in dets if d.entity_type == "PERSON"]


@pytest.mark.parametrize("text,name", [
    ("my husband tomasz hit me again last night", "tomasz"),  # lowercase, relationship cue
    ("I met Élodie at the clinic on tuesday", "Élodie"),  # non-ASCII capital, no other capital word
    ("i met élodie at the clinic on tuesday", "élodie"),  # lowercase non-ASCII
    ("my therapist dr. wilhelmina brandvold said i should call her", "wilhelmina brandvold"),  # lowercase title
    ("kasimir keeps texting me even after i blocked him", "kasimir"),  # sentence start, lowercase
    ("Honestly Ottoline is the only one who checks on me", "Ottoline"),
])
def test_names_in_informal_text_are_found(scrubber, capitals_only, text, name):
    assert persons(scrubber, text) == [name]
    if name.islower() or not any(w[0].isupper() and w not in ("I", "Honestly") for w in text.split()):
        assert persons(capitals_only, text) == []  # what the issue saw


def test_shortcut_still_skips_sentences_without_a_name_candidate(scrubber):
    plain = "i slept maybe four hours last night and i feel exhausted."
    assert scrubber.ner_segments(plain) == []  # no NER for ordinary lowercase talk
    assert [s[2] for s in scrubber.ner_segments("i met élodie at the clinic")] == ["I met Élodie at the clinic"]


def test_evaluation_names_are_never_on_the_detection_list():
    names = detection_names()
    pool = eval_name_pool()
    assert pool and len(names) > 5000
    assert not {n.casefold() for firsts, lasts in pool.values() for n in firsts + lasts} & names
    drawn = informal_set(300, lowercase=0.5) + labeled_set(200, seed=3)
    tokens = {w for s in drawn for sp in s["spans"] if sp["entity_type"] == "PERSON" for w in sp["entity_value"].split()}
    assert tokens and all(is_eval_name(w) and w.casefold() not in names for w in tokens)
    assert not set(EVAL_INFORMAL_TEMPLATES) & set(TUNE_INFORMAL_TEMPLATES)
    assert not set(EVAL_INFORMAL_TEMPLATES) & set(EVAL_TEMPLATES)


def test_informal_set_has_lowercase_accented_and_titled_names_with_exact_spans():
    samples = informal_set(400, lowercase=1 / 3)
    values = [sp["entity_value"] for s in samples for sp in s["spans"] if sp["entity_type"] == "PERSON"]
    for s in samples:
        for sp in s["spans"]:
            assert s["full_text"][sp["start_position"] : sp["end_position"]] == sp["entity_value"]
    lower = sum(v.islower() for v in values) / len(values)
    assert 0.25 < lower < 0.42
    assert any(not v.isascii() for v in values)
    assert any(" dr. " in s["full_text"] or " dr " in s["full_text"] for s in samples)
    assert all(v.islower() for s in informal_set(100, lowercase=1.0) for sp in s["spans"]
               if sp["entity_type"] == "PERSON" for v in [sp["entity_value"]])


def _person(scrubber, samples):
    result = evaluate(samples, scrubber.detect([s["full_text"] for s in samples]))
    return result["per_type"]["PERSON"]


@pytest.mark.parametrize("label", list(INFORMAL_PERSON_RECALL))
def test_informal_person_targets_met_and_missed_by_the_capitals_only_detector(scrubber, capitals_only, label):
    share, target = INFORMAL_PERSON_RECALL[label]
    samples = informal_set(300, seed=23, lowercase=share)
    ours = _person(scrubber, samples)
    assert ours["recall"] >= target and ours["precision"] >= MIN_INFORMAL_PERSON_PRECISION, ours
    assert _person(capitals_only, samples)["recall"] < target


def test_over_redaction_on_pii_free_conversations(scrubber):
    result = evaluate_detector(scrubber, labeled_set(10, seed=2), clean=clean_conversations(100, seed=29))
    assert result["over_redaction"]["per_conversation"] <= MAX_FALSE_DETECTIONS_PER_CLEAN_CONVERSATION
    lowercase = [[{**m, "content": m["content"].lower()} for m in c] for c in clean_conversations(100, seed=31)]
    result = evaluate_detector(scrubber, labeled_set(10, seed=2), clean=lowercase)
    assert result["over_redaction"]["per_conversation"] <= MAX_FALSE_DETECTIONS_PER_CLEAN_CONVERSATION


@pytest.mark.parametrize("text,value,entity", [
    # Full names that are also ordinary words, as the object of a person verb (missed in the demo).
    ("I finally told Crystal Sharp how I felt.", "Crystal Sharp", "PERSON"),
    ("It keeps happening. I finally told Tiffany Myers how I felt.", "Tiffany Myers", "PERSON"),
    # Plural USPS street suffixes ("Coves", "Drives", "Flats") and "Causeway" with a unit.
    ("I still drive past 29706 Smith Coves where it happened.", "29706 Smith Coves", "STREET_ADDRESS"),
    ("I still drive past 867 Reed Drives where it happened.", "867 Reed Drives", "STREET_ADDRESS"),
    ("I still drive past 32621 Justin Causeway Apt. 639 where it happened.", "32621 Justin Causeway Apt. 639",
     "STREET_ADDRESS"),
])
def test_demo_shaped_names_and_addresses_are_found(scrubber, text, value, entity):
    [dets] = scrubber.detect([text])
    assert value in [text[d.start:d.end] for d in dets if d.entity_type == entity]


def test_capitalised_words_after_a_verb_are_not_a_name_when_three_run_together(scrubber):
    assert persons(scrubber, "Last night I texted Crisis Text Line and it helped.") == []
