"""Issue 17: PII precision on real therapist writing (counsel-chat), the shipped labeled sample,
glued sentence repair and the language policy. The texts are from (or shaped like) the bundled
MIT counsel-chat answers; each case was flagged by the detector before this change."""

from __future__ import annotations

import json

import pytest

from pixel_assets.lib.ingest import load_source_bytes
from pixel_assets.lib.ingest.sentences import REPAIRS_KEY, family_repairs, repair_glued_sentences
from pixel_assets.lib.language import foreign_language, foreign_paragraphs
from pixel_assets.lib.pii.detection import Detection
from pixel_assets.lib.pii.real import (
    REAL_TYPES, RealLabelsError, evaluate_real, load_real_labels, placeholder_density, real_family,
    real_target_misses,
)
from pixel_assets.lib.pii.recognizers import is_link
from pixel_assets.lib.pii.scrubber import PiiScrubber
from pixel_assets.lib.registry import Family, Source, load_registry


@pytest.fixture(scope="module")
def scrubber():
    return PiiScrubber(n_process=1)


def found(scrubber, text, etype, family=None):
    [dets] = scrubber.detect([text], family)
    return [text[d.start : d.end] for d in dets if d.entity_type == etype]


# --- who a salutation addresses, and acronyms after "the" ----------------------------------------

COUNSEL_CHAT_FAMILY = "professional_therapeutic"


def test_the_counsel_chat_family_addresses_askers_by_town(scrubber):
    """counsel-chat showed askers by their town ("Hi Attica,"): in the family its source feeds, the
    addressee of an opening salutation is a place, still replaced; elsewhere it stays a person."""
    assert real_family(load_registry()) == COUNSEL_CHAT_FAMILY
    text = "Hi Prattville,\n\nI'm sorry this is so hard for you right now."
    assert found(scrubber, text, "PERSON") == ["Prattville"]  # another family: a person
    assert found(scrubber, text, "LOCATION", COUNSEL_CHAT_FAMILY) == ["Prattville"]
    assert found(scrubber, text, "PERSON", COUNSEL_CHAT_FAMILY) == []
    # not a salutation at the text's or a line's start: a person, in any family
    mid = "I wanted to say hi Prattville, and then I left the room without a word."
    assert "LOCATION" not in {d.entity_type for d in scrubber.detect([mid], COUNSEL_CHAT_FAMILY)[0]}
    # a name on the name list, or one the text names as a person again, stays a person (one type)
    listed = "Hello Sarah,\n\nThank you for reaching out about your sleep."
    assert found(scrubber, listed, "PERSON", COUNSEL_CHAT_FAMILY) == ["Sarah"]
    again = "Hi Ingrid,\n\nIt sounds hard. Ingrid, tell me more about what happened with your brother Tomasz."
    assert found(scrubber, again, "LOCATION", COUNSEL_CHAT_FAMILY) == []


def test_an_acronym_after_the_is_an_organisation(scrubber):
    text = ("2) if you are a military veteran you maybe eligible for free counseling through the VA, the Vet "
            "Center, or the Soldiers Project. You can get more information here:")  # a counsel-chat answer
    assert found(scrubber, text, "PERSON") == []
    # a capitalised name after "the" is still a name where NER says so (the rule is for acronyms)
    assert found(scrubber, "It was the Margaret I told you about, she called again.", "PERSON") == ["Margaret"]


def test_initials_after_a_relationship_cue_are_a_name_longer_acronyms_are_not(scrubber):
    assert found(scrubber, "My brother TJ keeps calling me at night and I can't sleep.", "PERSON") == ["TJ"]
    assert found(scrubber, "my ex JD texted me again last night", "PERSON") == ["JD"]
    assert found(scrubber, "my friend OCD is what they call it, I guess", "PERSON") == []


def test_real_writing_meets_its_targets_with_the_pipeline_settings(scrubber):
    """The detector on the shipped labeled answers with the settings the pipeline applies to them:
    URL precision and recall >= 0.95, PERSON precision >= 0.90, placeholders within 20% of the truth."""
    result = evaluate_real(scrubber, load_real_labels(), family=real_family(load_registry()), naive=False)
    person = result["project"]["per_type"]["PERSON"]
    assert result["misses"] == [], (result["misses"], person)
    assert person["recall"] >= 0.75, person  # precision is not bought by finding fewer names


# --- URLs need link syntax ------------------------------------------------------------------------

GLUED = "I'm sorry for your loss.There are therapy programs near you.Consider calling them."


def test_glued_sentences_are_not_links(scrubber):
    assert found(scrubber, GLUED, "URL") == []  # was ["loss", "you"]
    assert not is_link("loss.There", 0, 10) and not is_link("Example.Com", 0, 11)


@pytest.mark.parametrize("text,url", [
    ("Find me at www.brightpath-therapy.com.Please reach out.", "www.brightpath-therapy.com"),
    ("More at http://www.glbthotline.org/transteens.html.", "http://www.glbthotline.org/transteens.html"),
    ("Try psychologytoday.com/us/therapists for a list.", "psychologytoday.com/us/therapists"),
    ("Read it at goodtherapy.org.", "goodtherapy.org"),
    ("The book: https://smile.amazon.com/dp/080241270X/ref=sr_1_1?qid=1471479801&sr=8-1 is good",
     "https://smile.amazon.com/dp/080241270X/ref=sr_1_1?qid=1471479801&sr=8-1"),
])
def test_real_links_are_still_found_whole(scrubber, text, url):
    assert found(scrubber, text, "URL") == [url]
    assert found(scrubber, text, "PHONE_NUMBER") == []  # the digits inside a link are the link's


# --- glued sentence repair in normalization -------------------------------------------------------

def test_repair_inserts_a_space_only_between_sentences():
    assert repair_glued_sentences(GLUED) == (
        "I'm sorry for your loss. There are therapy programs near you. Consider calling them.", 2)
    assert repair_glued_sentences("Really?!Yes. okay.I agree") == ("Really?! Yes. okay. I agree", 2)
    for kept in ("U.S.Army", "e.g.The", "J.K.Rowling", "It costs 2.5 dollars", "see www.Example.com",
                 "Visit Example.Com today", "notes.Txt", "mail dan.whit@example.com.Thanks"):
        assert repair_glued_sentences(kept) == (kept, 0), kept


FAMILY = Family(name="fam", required=False, phase="A", license_tag="MIT", enabled=True,
                sources=(Source(path="x.jsonl", format="chatml"),))


def _load(*conversations):
    data = "".join(json.dumps({"messages": c}) + "\n" for c in conversations).encode()
    return load_source_bytes(data, source=FAMILY.sources[0], family=FAMILY, source_key="x.jsonl")


def test_normalization_repairs_and_counts_per_family():
    from pixel_assets.lib import contract

    records, quarantine = _load([{"role": "user", "content": "Help?"}, {"role": "assistant", "content": GLUED}])
    assert quarantine == []
    assert records[0]["messages"][1]["content"].startswith("I'm sorry for your loss. There")
    assert records[0]["metadata"][REPAIRS_KEY] == 2
    assert family_repairs(contract.records_to_frame(records * 3)) == 6


# --- language policy ------------------------------------------------------------------------------

SPANISH = ("Hola, pero lo que dices es muy importante. Es normal sentir miedo cuando las cosas cambian, "
           "y te recomiendo que hables con tu terapeuta sobre lo que sientes.")


def test_non_english_records_are_quarantined_and_counted():
    english = [{"role": "user", "content": "I feel anxious every morning before work."},
               {"role": "assistant", "content": "That sounds hard. Let us look at what happens first."}]
    spanish = [{"role": "user", "content": "Me siento triste."}, {"role": "assistant", "content": SPANISH}]
    records, quarantine = _load(english, spanish, [{"role": "user", "content": "gracias"},
                                                    {"role": "assistant", "content": "ok"}])
    assert len(records) == 2  # short messages are never judged
    assert [q["reason"] for q in quarantine] == ["language"]
    assert "es" in quarantine[0]["detail"] and "pero" not in quarantine[0]["detail"]  # no content
    assert foreign_language([SPANISH]) == "es" and foreign_language(["I feel anxious every day at work."]) is None


# --- PERSON needs name evidence ---------------------------------------------------------------------

@pytest.mark.parametrize("text,not_a_name", [
    ("Research codependency. There is a great book called Codependent No More. There are a lot of "
     "articles on the internet that you can read.", "Codependent"),
    ("Hola, pero lo que dices es importante para mi.", "pero lo"),
    ("Do your parents object to you and your boyfriend continuing to see each other in person? Or, do "
     "they object only to the pregnancy?", "continuing"),
    ("He was diagnosed with Major Depression last year.", "Major Depression"),
    ("Thank you for writing. We might otherwise miss. Hope this helps!", "Hope"),
])
def test_words_that_are_not_people(scrubber, text, not_a_name):
    assert all(not_a_name not in p and p not in not_a_name for p in found(scrubber, text, "PERSON"))


def test_lowercase_words_in_careful_prose_are_not_names(scrubber):
    answer = ("It is common to feel torn when your family disagrees with a pregnancy. Consider bringing up "
              "the topic during your next obgyn visit. Your doctor may ask your mom to explain her reasons. "
              "Sometimes a neutral person helps everyone listen, and that can make the next talk easier.")
    assert found(scrubber, answer, "PERSON") == []


@pytest.mark.parametrize("text,name", [
    ("Another book that might be helpful is \u201cCodependent No More\u201d by Melody Beattie.", "Melody Beattie"),
    ("I agree with Sherry that being patient with yourself is important.", "Sherry"),
    ("Best of luck to you.\n\nRobin J. Landwehr, DBH, LPC, NCC", "Robin J. Landwehr"),
    ("my husband tomasz hit me again last night", "tomasz"),
    ("I met Crystal Sharp.", "Crystal Sharp"),
])
def test_real_names_are_still_found(scrubber, text, name):
    assert name in found(scrubber, text, "PERSON")


def test_spanish_paragraphs_get_patterns_only(scrubber):
    text = "Thank you for your question.\n\n" + SPANISH + " Llama al 787-466-5478."
    [(start, end)] = foreign_paragraphs(text)
    assert text[start:].startswith("Hola")
    assert found(scrubber, text, "PERSON") == [] and found(scrubber, text, "PHONE_NUMBER") == ["787-466-5478"]


# --- the shipped labeled sample and `pii-eval --real` -------------------------------------------

def test_shipped_real_labels_cover_300_answers_and_every_type():
    samples = load_real_labels()
    assert len(samples) >= 300
    types = {s["entity_type"] for smp in samples for s in smp["spans"]}
    assert types == set(REAL_TYPES)
    for smp in samples:
        for s in smp["spans"] + smp["kept"]:
            assert smp["full_text"][s["start_position"] : s["end_position"]] == s["entity_value"]


class _Oracle:
    """A detector that returns exactly the labeled spans (plus `extra` false ones)."""

    class config:  # noqa: N801 - stands in for PiiConfig
        spacy_model = "unused"

    def __init__(self, samples, extra=0):
        self.by_text = {s["full_text"]: s["spans"] for s in samples}
        self.extra = extra

    def detect(self, texts, family=None):
        out = []
        for i, t in enumerate(texts):
            dets = [Detection(s["start_position"], s["end_position"], s["entity_type"], 0.9) for s in self.by_text[t]]
            if i < self.extra:
                dets.append(Detection(0, 2, "PERSON", 0.9))
            out.append(dets)
        return out


def test_real_eval_scores_the_shipped_labels():
    samples = load_real_labels()
    perfect = evaluate_real(_Oracle(samples), samples, naive=False)
    assert all(perfect["project"]["per_type"][t]["precision"] == 1.0 for t in REAL_TYPES)
    assert perfect["project"]["placeholders_per_1000_words"] == perfect["truth"]["placeholders_per_1000_words"]
    assert perfect["misses"] == []
    noisy = evaluate_real(_Oracle(samples, extra=60), samples, naive=False)
    assert noisy["project"]["per_type"]["PERSON"]["precision"] < 0.9
    assert any(m.startswith("PERSON precision") for m in real_target_misses(noisy))
    assert any(m.startswith("placeholders per 1,000 words") for m in noisy["misses"])


def test_real_labels_are_validated(tmp_path):
    bad = tmp_path / "labels.jsonl"
    bad.write_text(json.dumps({"full_text": "Hi Sarah", "spans": [
        {"entity_type": "PERSON", "entity_value": "Sara", "start_position": 3, "end_position": 8}]}) + "\n")
    with pytest.raises(RealLabelsError, match="line 1"):
        load_real_labels(str(bad))


def test_placeholder_density_per_1000_words():
    records = [{"messages": [{"role": "user", "content": "I told <PERSON_1> about it " + "word " * 95}]}]
    assert placeholder_density(records) == {"placeholders": 1, "words": 100, "placeholders_per_1000_words": 10.0}
