"""The scrubber's output passes its own detector: overlaps merged, re-scan passes, word boundaries
in glued sign-offs, allow-lists of crisis lines and credentials, names in source paths."""

from __future__ import annotations

import dataclasses
import re

import polars as pl
import pytest

from pixel_assets.lib.pii.detection import Detection, resolve_overlaps
from pixel_assets.lib.pii.paths import path_names, scrub_path
from pixel_assets.lib.pii.scrub import scrub_records
from pixel_assets.lib.pii.scrubber import PiiScrubber
from pixel_assets_tests.test_pii_scrub import record, turns


@pytest.fixture(scope="module")
def scrubber():
    return PiiScrubber(n_process=1)


def scrub_one(scrubber, *contents, family="cptsd", **meta):
    clean, review, stats = scrub_records([record(turns(*contents), family=family, **meta)], family=family,
                                         scrubber=scrubber)
    [out] = clean + review
    return out, stats


def confident_left(scrubber, texts):
    high = scrubber.config.review_band[1]
    return [d for dets in scrubber.detect(texts) for d in dets if d.score >= high]


def test_overlapping_detections_are_merged_not_dropped():
    url, phone = Detection(0, 26, "URL", 0.7), Detection(20, 38, "PHONE_NUMBER", 0.75)
    [merged] = resolve_overlaps([url, phone], {"URL": 6, "PHONE_NUMBER": 7})
    assert (merged.start, merged.end, merged.entity_type, merged.score) == (0, 38, "PHONE_NUMBER", 0.75)
    apart = resolve_overlaps([Detection(0, 5, "PERSON", 0.9), Detection(5, 9, "URL", 0.7)])
    assert len(apart) == 2  # touching is not overlapping


SIGN_OFFS = [
    # URL glued to a phone number glued to the next word
    ("Warmly, Dr. Odalys Fenwick, LMFT www.fenwick-counseling.com404.293.5654Please reach out anytime.",
     ["Odalys", "Fenwick", "fenwick-counseling", "404.293.5654", "5654"], ["Please reach out anytime.", "LMFT"]),
    # a top-level domain that is also the start of the next word (".Pl" + "ease")
    ("Find me at www.brightpath-therapy.com.Please reach out if you need to.",
     ["brightpath"], ["Please reach out if you need to."]),
    # a name glued to the practice name
    ("Theodora VashtiVashti Family Therapy, Tulsa", ["Theodora", "Vashti"], []),
    ("Best wishes, Marisol QuennevilleQuenneville Emotional Health 918-555-0143", ["Marisol", "Quenneville",
                                                                               "918-555-0143"], []),
]


@pytest.mark.parametrize("text,gone,kept", SIGN_OFFS)
def test_glued_sign_offs_are_scrubbed_to_word_boundaries(scrubber, text, gone, kept):
    out, _stats = scrub_one(scrubber, "Any advice?", text)
    scrubbed = out["messages"][1]["content"]
    for value in gone:
        assert value not in scrubbed, (value, scrubbed)
    for value in kept:
        assert value in scrubbed, (value, scrubbed)
    assert confident_left(scrubber, [scrubbed]) == []  # passes its own detector
    assert out["metadata"]["pii_status"] == "scrubbed"


class _HiddenSecondName(PiiScrubber):
    """A detector that sees 'Quenby' only once 'Zorblat' has been replaced (as an overlap can hide one
    value behind another): only a re-scan of the scrubbed text finds it."""

    def detect_unfiltered(self, texts):
        out = []
        for t in texts:
            name = "Zorblat" if "Zorblat" in t else "Quenby"
            out.append([Detection(m.start(), m.end(), "PERSON", 0.9) for m in re.finditer(name, t)])
        return out


class _FindsItsOwnPlaceholders(PiiScrubber):
    """A detector that flags every placeholder: the scrubbed text never passes, so passes run out."""

    def detect_unfiltered(self, texts):
        return [[Detection(m.start(), m.end(), "PERSON", 0.9) for m in re.finditer(r"<PERSON_\d+>|Zorblat", t)]
                for t in texts]


def test_scrubbed_text_is_rescanned_until_nothing_is_found():
    rec = record(turns("Zorblat told Quenby about it.", "Okay."))
    [out], [], stats = scrub_records([rec], family="cptsd", scrubber=_HiddenSecondName(n_process=1))
    assert out["messages"][0]["content"] == "<PERSON_1> told <PERSON_2> about it."
    assert stats["rescan"]["replaced"] == 1


def test_text_that_never_passes_goes_to_review():
    rec = record(turns("Zorblat again.", "Okay."))
    clean, [review], stats = scrub_records([rec], family="cptsd", scrubber=_FindsItsOwnPlaceholders(n_process=1))
    assert clean == [] and review["metadata"]["pii_status"] == "requires_review"
    assert [s["reason"] for s in review["metadata"]["pii_review"]] == ["residual"]
    assert stats["rescan"]["residual_records"] == 1 and "Zorblat" not in review["messages"][0]["content"]


CRISIS = ("If you are in crisis, call or text 988, call the Lifeline at 1-800-273-8255 (1-800-273-TALK), "
          "text HOME to 741741, or the hotline at 1-800-799-7233.")


def test_public_crisis_lines_are_kept_and_other_numbers_are_not(scrubber):
    out, _ = scrub_one(scrubber, "I don't feel safe tonight. My cell is 404-293-5654.", CRISIS)
    assert out["messages"][1]["content"] == CRISIS
    assert "404-293-5654" not in out["messages"][0]["content"]
    for number in ("988", "1-800-273-8255", "1-800-273-TALK", "741741", "1-800-799-7233"):
        assert number in out["messages"][1]["content"]
    # The allow-list is what keeps them: without it the lifeline numbers are scrubbed.
    bare = PiiScrubber(dataclasses.replace(scrubber.config, public_numbers=()), n_process=1)
    out, _ = scrub_one(bare, "Any numbers?", CRISIS)
    assert "1-800-273-8255" not in out["messages"][1]["content"]


@pytest.mark.parametrize("credential", ["LMFT", "LCSW", "LPC", "PsyD"])
def test_clinical_credentials_are_never_names(scrubber, credential):
    text = f"Odalys Fenwick, {credential}, has worked with trauma survivors for years. Ask a {credential}."
    out, _ = scrub_one(scrubber, "Who wrote this?", text)
    scrubbed = out["messages"][1]["content"]
    assert scrubbed.count(credential) == 2 and "Odalys" not in scrubbed and "Fenwick" not in scrubbed


def test_the_credential_list_is_what_keeps_them(scrubber):
    text = "Jane Roe, LCSW, PsyD, LPC"
    [dets] = scrubber.detect([text])
    assert [text[d.start : d.end] for d in dets] == ["Jane Roe"]
    bare = PiiScrubber(dataclasses.replace(scrubber.config, credentials=()), n_process=1)
    [dets] = bare.detect([text])
    assert "LCSW" in [text[d.start : d.end] for d in dets]  # the small model calls it a person


NAMED_PATH = "file:///data/sources/cptsd/intake_notes_Theodora_Quenby_2021.jsonl"


def test_a_name_in_a_source_file_name_is_scrubbed_from_paths(scrubber):
    out, _ = scrub_one(scrubber, "Hello.", "Hi.")
    assert out["metadata"]["source_key"] == "file:///x"  # no name: unchanged
    rec = record(turns("Hello.", "Hi."))
    rec["metadata"]["source_key"] = rec["metadata"]["provenance"]["original_s3_key"] = NAMED_PATH
    [out], [], _ = scrub_records([rec], family="cptsd", scrubber=scrubber)
    meta = out["metadata"]
    for key in (meta["source_key"], meta["provenance"]["original_s3_key"]):
        assert "Theodora" not in key and "Quenby" not in key
        assert key.startswith("file:///data/sources/cptsd/intake_notes_") and key.endswith("_2021.jsonl")
        assert path_names(key, scrubber=scrubber) == []  # idempotent: a gate's re-scan finds nothing
    assert path_names(NAMED_PATH, scrubber=scrubber)  # ... where the raw path fails it
    # The manifest's provenance_map is built from the records' source_key.
    from pixel_assets.lib.compiled.build import _provenance_map

    work = pl.DataFrame({"content_hash": [meta["content_hash"]], "source_key": [meta["source_key"]],
                         "source_family": ["cptsd"], "original_format": ["jsonl"], "steps": [["ingest"]]})
    assert "Quenby" not in str(_provenance_map(work))


def test_path_names_respect_the_family_allow_list(scrubber):
    path = "s3://bucket/sources/video_transcripts/kati_morton/kati_morton_video_001.txt"
    assert scrub_path(path, scrubber=scrubber, family="video_transcripts") == path
    assert "morton" not in scrub_path(path, scrubber=scrubber, family="cptsd").rsplit("/", 1)[1].split("_")[:2]
    assert scrub_path("file:///data/src/cptsd/part_2.jsonl", scrubber=scrubber) == "file:///data/src/cptsd/part_2.jsonl"
