"""PiiScrubber / scrub_frame: replacement, consistency, review routing, allow-lists, cache."""

from __future__ import annotations

import io
import json

import polars as pl
import pytest

from pixel_assets.lib import contract
from pixel_assets.lib.pii.cache import PiiCache
from pixel_assets.lib.pii.config import PiiConfigError, config_from_dict
from pixel_assets.lib.pii.scrub import PlaceholderMap, scrub_frame
from pixel_assets.lib.pii.scrubber import PiiScrubber

VALUES = {
    "PERSON": "Margaret Okafor",
    "EMAIL_ADDRESS": "maggie.okafor@example.net",
    "PHONE_NUMBER": "415-555-0187",
    "US_SSN": "536-22-8726",
    "CREDIT_CARD": "4012 8888 8888 1881",
    "IP_ADDRESS": "198.51.100.23",
    "URL": "https://okafor-family.example.com/photos",
    "STREET_ADDRESS": "1428 Willow Creek Drive",
    "LOCATION": "Denver",
    "SOCIAL_HANDLE": "@maggie_ok77",
    "DATE_OF_BIRTH": "04/12/1986",
}
SENTENCES = {
    "PERSON": "My sister {} keeps calling me selfish.",
    "EMAIL_ADDRESS": "Please send the notes to {} after the session.",
    "PHONE_NUMBER": "My number is {} if you need to reschedule.",
    "US_SSN": "The clinic asked for my social security number, {}, and I gave it.",
    "CREDIT_CARD": "I paid with the card {} and it was declined.",
    "IP_ADDRESS": "Someone logged in from {} at night.",
    "URL": "I read about it on {} yesterday.",
    "STREET_ADDRESS": "We still live at {} near the school.",
    "LOCATION": "I moved to {} after the divorce.",
    "SOCIAL_HANDLE": "He follows me as {} on every app.",
    "DATE_OF_BIRTH": "I was born on {} and birthdays are hard.",
}


@pytest.fixture(scope="module")
def scrubber():
    return PiiScrubber(n_process=1)


def record(messages, family="cptsd", **meta):
    return {"messages": messages, "metadata": {
        "content_hash": contract.content_hash(messages), "source_family": family, "source_key": "file:///x",
        "provenance": {"original_s3_key": "file:///x", "processing_steps": ["ingest", "encoding_repair", "normalize"]},
        **meta}}


def turns(*contents):
    return [{"role": "user" if i % 2 == 0 else "assistant", "content": c} for i, c in enumerate(contents)]


def only(frame):
    [rec] = contract.frame_to_records(frame)
    return rec


@pytest.mark.parametrize("etype", list(VALUES))
def test_each_entity_type_is_caught_and_replaced(scrubber, etype):
    text = SENTENCES[etype].format(VALUES[etype])
    frame = contract.records_to_frame([record(turns("Since March I feel low.", text))])
    result = scrub_frame(frame, family="cptsd", scrubber=scrubber)
    rec = only(result.clean)
    scrubbed = rec["messages"][1]["content"]
    assert VALUES[etype] not in scrubbed
    assert f"<{etype}_1>" in scrubbed
    assert rec["metadata"]["pii_status"] == "scrubbed"
    assert result.stats["entities_replaced"].get(etype) == 1
    assert rec["metadata"]["content_hash"] == contract.content_hash(rec["messages"])
    assert rec["metadata"]["provenance"]["processing_steps"][-1] == "pii_scrub"


def test_placeholders_are_consistent_across_turns_and_rejected_response(scrubber):
    msgs = turns(
        "I'm Daniel Whitaker. My email is dan.whit@example.com.",
        "Thank you, Daniel Whitaker. What brings you here?",
        "Priya Raman said I should write to dan.whit@example.com more.",
    )
    rec = record(msgs, family="dpo_preference", rejected_response="Daniel Whitaker, email dan.whit@example.com now.")
    out = only(scrub_frame(contract.records_to_frame([rec]), family="dpo_preference", scrubber=scrubber).clean)
    texts = [m["content"] for m in out["messages"]] + [out["metadata"]["rejected_response"]]
    assert "<PERSON_1>" in texts[0] and "<PERSON_1>" in texts[1] and "<PERSON_1>" in texts[3]
    assert "<PERSON_2>" in texts[2]  # a different person gets a different placeholder
    assert sum(t.count("<EMAIL_ADDRESS_1>") for t in texts) == 3
    assert not any("Whitaker" in t or "dan.whit" in t for t in texts)


def test_uncertain_detection_routes_record_to_review_only(scrubber):
    sure = record(turns("Call me at 415-555-0187 please.", "Okay."))
    unsure = record(turns("My member id might be 536228726, not sure.", "Okay."))  # bare 9 digits
    clean = record(turns("I've been sober for 94 days.", "That's a real achievement."))
    result = scrub_frame(contract.records_to_frame([sure, unsure, clean]), family="addiction", scrubber=scrubber)
    assert result.stats["status"] == {"scrubbed": 1, "none_detected": 1, "requires_review": 1}
    assert {r["metadata"]["pii_status"] for r in contract.frame_to_records(result.clean)} == {"scrubbed", "none_detected"}
    review = only(result.review)
    assert review["metadata"]["pii_status"] == "requires_review"
    [span] = review["metadata"]["pii_review"]
    assert span["entity_type"] == "US_SSN"
    assert review["messages"][span["text_index"]]["content"][span["start"] : span["end"]] == "536228726"


def config_with(**overrides):
    """The packaged config with some keys replaced."""
    import yaml
    from importlib import resources

    raw = yaml.safe_load(resources.files("pixel_assets.config").joinpath("pii.yaml").read_text())
    return config_from_dict({**raw, **overrides})


def test_review_band_is_configurable():
    wide = PiiScrubber(config_with(review_band=[0.4, 0.9]), n_process=1)
    # A phone (score 0.75) is now inside the band -> review, not clean.
    result = scrub_frame(contract.records_to_frame([record(turns("Call 415-555-0187 now.", "Ok."))]),
                         family="addiction", scrubber=wide)
    assert result.clean.height == 0 and result.review.height == 1
    assert wide.fingerprint != PiiScrubber(n_process=1).fingerprint


def test_family_allow_list_is_respected(scrubber):
    text = "As Tim Fletcher explains, complex trauma shapes how we see ourselves."
    for family, kept in (("video_transcripts", True), ("cptsd", False)):
        rec = only(scrub_frame(contract.records_to_frame([record(turns("Hi.", text), family=family)]),
                               family=family, scrubber=scrubber).clean)
        assert ("Tim Fletcher" in rec["messages"][1]["content"]) is kept


def test_platform_names_are_kept_while_the_person_is_replaced(scrubber):
    text = "Karen Whitfield posts about me on Instagram and I keep refreshing it at night."
    assert any(text[d.start:d.end] == "Instagram" for d in scrubber.detect_unfiltered([text])[0]), \
        "the model no longer tags the platform; this allow-list entry may be obsolete"
    rec = only(scrub_frame(contract.records_to_frame([record(turns(text, "That sounds exhausting."))]),
                           family="cptsd", scrubber=scrubber).clean)
    out = rec["messages"][0]["content"]
    assert "Instagram" in out and "Karen Whitfield" not in out and "<PERSON" in out


def test_durations_are_not_redacted_but_date_of_birth_is(scrubber):
    text = ("I've felt like this since March, for 8 years now, and last Tuesday was the worst. "
            "My date of birth is June 3, 1979.")
    rec = only(scrub_frame(contract.records_to_frame([record(turns(text, "I hear you."))]),
                           family="cptsd", scrubber=scrubber).clean)
    out = rec["messages"][0]["content"]
    for phrase in ("since March", "for 8 years", "last Tuesday"):
        assert phrase in out
    assert "1979" not in out and "<DATE_OF_BIRTH_1>" in out


def test_cache_hit_path_skips_detection_and_change_misses(scrubber, tmp_path, monkeypatch):
    recs = [record(turns(f"Session {i}: my email is pat{i}@example.com", "Thanks.")) for i in range(5)]
    frame = contract.records_to_frame(recs)
    with PiiCache(tmp_path / "pii.sqlite") as cache:
        first = scrub_frame(frame, family="cptsd", scrubber=scrubber, cache=cache)
        assert (first.stats["cache_hits"], first.stats["cache_misses"]) == (0, 5)
        assert len(cache) == 5
    calls = []
    real = scrubber.detect_unfiltered
    monkeypatch.setattr(scrubber, "detect_unfiltered", lambda texts: calls.append(len(texts)) or real(texts))
    changed = recs + [record(turns("New one: reach me at new@example.com", "Sure."))]
    with PiiCache(tmp_path / "pii.sqlite") as cache:  # reopened: persistent on disk
        second = scrub_frame(contract.records_to_frame(changed), family="cptsd", scrubber=scrubber, cache=cache)
    assert (second.stats["cache_hits"], second.stats["cache_misses"]) == (5, 1)
    # only the new record's two texts, then its scrubbed text (the re-scan pass; the cached records'
    # re-scans come from the cache too), then the one distinct source path
    assert calls == [2, 1, 1]
    assert contract.frame_to_records(second.clean)[:5] == contract.frame_to_records(first.clean)


def test_no_planted_value_in_stats_or_logs(scrubber, tmp_path):
    text = " ".join(SENTENCES[t].format(v) for t, v in VALUES.items())
    frames = contract.records_to_frame([record(turns(text, "Okay.")),
                                        record(turns("maybe 536228726 is it", "Hm."))])
    lines: list[str] = []
    with PiiCache(tmp_path / "c.sqlite") as cache:
        result = scrub_frame(frames, family="cptsd", scrubber=scrubber, cache=cache, log=lines.append)
    blob = json.dumps(result.stats) + "\n".join(lines) + (tmp_path / "c.sqlite").read_bytes().decode("latin-1")
    assert lines
    for value in [*VALUES.values(), "536228726", "Margaret", "Okafor"]:
        assert value not in blob


def test_parallel_detection_matches_serial():
    texts = [SENTENCES[t].format(v) for t, v in VALUES.items()] * 10
    serial = PiiScrubber(n_process=1).detect(texts)
    parallel = PiiScrubber(config_with(parallel_min_texts=10, batch_size=8, n_process=2))
    assert parallel.detect(texts) == serial


def test_bad_config_and_bad_records_raise_clear_errors(scrubber):
    with pytest.raises(PiiConfigError, match="review_band"):
        config_from_dict({"review_band": [0.9, 0.1]})
    with pytest.raises(PiiConfigError, match="unknown keys"):
        config_from_dict({"reviw_band": [0.1, 0.2]})
    bad = contract.records_to_frame([record(turns("hi", "there"))]).with_columns(record=pl.lit('{"x": 1}'))
    with pytest.raises(ValueError, match="lacks messages"):
        scrub_frame(bad, family="cptsd", scrubber=scrubber)


def test_pii_detect_cli_writes_one_line_per_input(monkeypatch, capsys):
    from pixel_assets.cli import main

    lines = [{"text": "Write to a.b@example.org"}, {"text": "For 8 years since March."}]
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(json.dumps(x) for x in lines) + "\n"))
    assert main(["pii-detect"]) == 0
    out = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert len(out) == 2
    assert [s["entity_type"] for s in out[0]["spans"]] == ["EMAIL_ADDRESS"]
    assert out[1]["spans"] == []


def test_scrubbing_is_idempotent_on_placeholders(scrubber):
    rec = record(turns("I'm Daniel Whitaker, dan.whit@example.com, 415-555-0187.", "Hello Daniel Whitaker."))
    once = scrub_frame(contract.records_to_frame([rec]), family="cptsd", scrubber=scrubber).clean
    twice = scrub_frame(once, family="cptsd", scrubber=scrubber)
    again = only(twice.clean)
    assert again["metadata"]["pii_status"] == "none_detected"
    assert [m["content"] for m in again["messages"]] == [m["content"] for m in only(once)["messages"]]


def test_pii_eval_cli_reads_a_labeled_file(tmp_path, capsys):
    from pixel_assets.cli import main

    path = tmp_path / "labeled.json"
    assert main(["pii-labeled-set", "--n", "40", "--out", str(path)]) == 0
    assert len(json.loads(path.read_text())) == 40
    capsys.readouterr()
    assert main(["pii-eval", "--labeled", str(path), "--clean", "5", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["samples"] == 40
    assert result["overall"]["support"] == sum(len(s["spans"]) for s in json.loads(path.read_text()))
    assert {"precision", "recall", "f2", "support"} <= set(result["per_type"]["EMAIL_ADDRESS"])
    assert result["over_redaction"]["conversations"] == 5


def test_changed_detector_config_invalidates_cache(scrubber, tmp_path):
    frame = contract.records_to_frame([record(turns("my email is pat@example.com", "Thanks."))])
    other = PiiScrubber(config_with(min_score=0.45), n_process=1)
    with PiiCache(tmp_path / "pii.sqlite") as cache:
        scrub_frame(frame, family="cptsd", scrubber=scrubber, cache=cache)
        assert scrub_frame(frame, family="cptsd", scrubber=scrubber, cache=cache).stats["cache_hits"] == 1
        assert scrub_frame(frame, family="cptsd", scrubber=other, cache=cache).stats["cache_hits"] == 0


def test_people_sharing_a_surname_or_title_keep_different_placeholders(scrubber):
    msgs = turns("Hi, I'm Sarah Johnson. My brother Mike Johnson lives with me.", "Thanks Sarah. How is Mike doing?")
    out = [m["content"] for m in only(scrub_frame(contract.records_to_frame([record(msgs)]),
                                                  family="cptsd", scrubber=scrubber).clean)["messages"]]
    assert out == ["Hi, I'm <PERSON_1>. My brother <PERSON_2> lives with me.", "Thanks <PERSON_1>. How is <PERSON_2> doing?"]
    # Titles, case and punctuation do not make or break a match; a surname shared by two earlier
    # full names is ambiguous and gets its own placeholder rather than claiming one of them.
    pmap = PlaceholderMap()
    names = ["Dr. Smith", "Dr. Jones", "smith", "Mr Jones,", "Sarah Johnson", "Mike Johnson", "Johnson", "johnson"]
    assert [pmap.placeholder("PERSON", n) for n in names] == [
        "<PERSON_1>", "<PERSON_2>", "<PERSON_1>", "<PERSON_2>", "<PERSON_3>", "<PERSON_4>", "<PERSON_5>", "<PERSON_5>"]
    # A first name seen before a full name joins it, but not a second full name with that first name.
    pmap = PlaceholderMap()
    names = ["Sarah", "Sarah Johnson", "Sarah Williams", "Mike", "Anna", "Anna Mike"]
    assert [pmap.placeholder("PERSON", n) for n in names] == [
        "<PERSON_1>", "<PERSON_1>", "<PERSON_2>", "<PERSON_3>", "<PERSON_4>", "<PERSON_5>"]
    # NER spans can take in a neighbouring word ("Sure Bob Smith"): still the same person.
    pmap = PlaceholderMap()
    assert {pmap.placeholder("PERSON", n) for n in ["Bob Smith", "Sure Bob Smith", "Bob"]} == {"<PERSON_1>"}


def test_review_offsets_survive_a_long_value_replaced_after_a_short_one(scrubber):
    # "@al_k" grows into its placeholder, then the email shrinks: the uncertain id after both
    # must be offset by the net change, not by the largest change seen so far.
    text = "Ask @al_k or write to margaret.okafor.family@example.net, my member id might be 536228726, not sure."
    result = scrub_frame(contract.records_to_frame([record(turns(text, "Okay."))]), family="cptsd", scrubber=scrubber)
    review = only(result.review)
    [span] = review["metadata"]["pii_review"]
    scrubbed = review["messages"][span["text_index"]]["content"]
    assert "<SOCIAL_HANDLE_1>" in scrubbed and "<EMAIL_ADDRESS_1>" in scrubbed
    assert scrubbed[span["start"] : span["end"]] == "536228726"


def test_source_metadata_strings_are_scrubbed_like_messages(scrubber, tmp_path):
    msgs = turns("I keep thinking about what Alice Walker told me.", "What did she say?")
    rec = record(msgs, family="edge_case_generator", category="Call Dr. Alice Walker at 212-555-0199",
                 difficulty_level="hard", original_format="edge_case_prompt_response")
    with PiiCache(tmp_path / "pii.sqlite") as cache:
        first = scrub_frame(contract.records_to_frame([rec]), family="edge_case_generator", scrubber=scrubber, cache=cache)
        second = scrub_frame(contract.records_to_frame([rec]), family="edge_case_generator", scrubber=scrubber, cache=cache)
    out = only(first.clean)
    assert out["messages"][0]["content"] == "I keep thinking about what <PERSON_1> told me."
    # Same person, same placeholder as in the turns; pipeline fields are left alone.
    assert out["metadata"]["category"] == "Call Dr. <PERSON_1> at <PHONE_NUMBER_1>"
    assert out["metadata"]["difficulty_level"] == "hard"
    assert out["metadata"]["original_format"] == "edge_case_prompt_response"
    assert second.stats["cache_hits"] == 1 and only(second.clean) == out
    # The family allow-list still applies: a transcript's creator is kept.
    transcript = record(turns("As Tim Fletcher explains, shame hides."), family="video_transcripts",
                        creator="Tim Fletcher", video="complex_trauma_and_shame")
    kept = only(scrub_frame(contract.records_to_frame([transcript]), family="video_transcripts", scrubber=scrubber).clean)
    assert kept["metadata"]["creator"] == "Tim Fletcher"
    # An uncertain value in an extra routes the record to review, with an offset into that extra.
    unsure = record(turns("Hello.", "Hi."), family="edge_case_generator", category="member id 536228726?")
    result = scrub_frame(contract.records_to_frame([unsure]), family="edge_case_generator", scrubber=scrubber)
    assert result.clean.height == 0
    [span] = only(result.review)["metadata"]["pii_review"]
    assert span["field"] == "metadata.category"
    assert only(result.review)["metadata"]["category"][span["start"] : span["end"]] == "536228726"


def test_the_salutation_rule_applies_per_family_after_the_detection_cache(scrubber, tmp_path):
    """Cached detections are the family-independent ones; the place-greeting rule, like the
    allow-lists, is applied per family afterwards, so a cache filled by another family serves it."""
    assert "place_greeting_families" not in scrubber.config.detector_settings()
    family = scrubber.config.place_greeting_families[0]
    answer = "Hi Prattville,\n\nI'm sorry this is so hard for you right now."
    frame = contract.records_to_frame([record(turns("I can't sleep since the move.", answer))])
    with PiiCache(tmp_path / "pii.sqlite") as cache:
        other = only(scrub_frame(frame, family="cptsd", scrubber=scrubber, cache=cache).clean)
        result = scrub_frame(frame, family=family, scrubber=scrubber, cache=cache)
    assert result.stats["cache_hits"] == 1
    assert other["messages"][1]["content"].startswith("Hi <PERSON_1>,")
    assert only(result.clean)["messages"][1]["content"].startswith("Hi <LOCATION_1>,")


def test_place_greeting_families_must_be_a_list():
    with pytest.raises(PiiConfigError, match="place_greeting_families"):
        config_from_dict({"place_greeting_families": "professional_therapeutic"})
