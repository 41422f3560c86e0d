"""The gates check with methods of their own: each test plants a defect that the producer's method
misses (dedup's LSH at its seed, the scrubber's structured recognizers, the scrubber's NER) and
shows the gate catches it; and the gate modules import nothing of lib/dedup or lib/pii but shared
constants and configuration."""

from __future__ import annotations

import ast
import random
from pathlib import Path

import pytest

from pixel_assets.lib import gates
from pixel_assets.lib.gates.near_duplicates import jaccard, near_duplicate_pairs, shingle_set
from pixel_assets.lib.registry import load_registry
from pixel_assets.lib.storage import LocalDataRoot
from pixel_assets_tests import test_gates_helpers as h


@pytest.fixture(scope="module")
def registry():
    return load_registry()


def only_failure(report, gate):
    assert report.failed_gates == [gate], {g.name: g.message for g in report.gates if not g.passed}
    return report.gate(gate)


def _pair_dedup_misses() -> tuple[tuple[str, str], tuple[str, str]]:
    """Two records (user, assistant) at exact 5-shingle Jaccard 0.8 that the dedup stage's LSH,
    at its threshold and seed, does not make candidates: searched for here (about 1 pair in 20
    at this Jaccard is missed). The one changed word sits in the user turn, so the first user
    turns differ."""
    from pixel_assets.lib.dedup import dedup_text, near_duplicate_clusters

    def record(user, assistant):
        return {"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]}

    for seed in range(2000):
        words = h._sentence(random.Random(seed), 49).split()
        changed = [*words[:24], "changed", *words[25:]]
        a, b = (" ".join(words[:30]), " ".join(words[30:])), (" ".join(changed[:30]), " ".join(changed[30:]))
        if a[0] == b[0] or jaccard(shingle_set(a, 5), shingle_set(b, 5)) < 0.8:
            continue
        labels = near_duplicate_clusters([dedup_text(record(*a)), dedup_text(record(*b))], threshold=0.8)
        if labels[0] != labels[1]:
            return a, b
    raise AssertionError("no pair missed by the LSH in 2000 tries")


def test_near_duplicate_pairs_are_exact_and_complete():
    rng = random.Random(1)
    texts = [h._sentence(rng, 40) for _ in range(60)]
    texts += [t.replace(t.split()[20], "changed", 1) for t in texts[:10]]  # ten near-copies
    sets = [shingle_set([t], 5) for t in texts]
    brute = sorted((i, j, jaccard(sets[i], sets[j])) for i in range(len(sets)) for j in range(i + 1, len(sets))
                   if jaccard(sets[i], sets[j]) >= 0.7)
    assert len(brute) >= 10 and near_duplicate_pairs(sets, 0.7) == brute


@pytest.fixture(scope="module")
def planted(tmp_path_factory, registry):
    """One clean dataset with every planted defect (built and verified once, to keep the suite
    short): the near-duplicate pair dedup's LSH misses (train + test), two structured-PII texts the
    scrubber's recognizers miss, and 45 conversations with lowercase names its NER misses.
    Decontamination is set above any overlap: it flags the pair too, and the near-duplicate check
    alone must catch it."""
    (user_a, answer_a), (user_b, answer_b) = _pair_dedup_misses()
    records = h.clean_records(registry)
    family = records[0]["metadata"]["source_family"]
    original = h.make_record(family, 998, registry, user_a, answer_a)
    copy = h.make_record(family, 999, registry, user_b, answer_b)
    rng = random.Random(4)
    for i, text in enumerate(STRUCTURED_PLANTS.values()):
        records[i] = h.make_record(records[i]["metadata"]["source_family"], 700 + i, registry, text,
                                   h._sentence(rng, 18))
    named = 0
    for i, rec in enumerate(records[len(STRUCTURED_PLANTS):], start=len(STRUCTURED_PLANTS)):
        fam = rec["metadata"]["source_family"]
        if named < 45 and registry[fam].holdout.mode == "none":
            text = f"{NAME_PLANTS[named % len(NAME_PLANTS)]} {h._sentence(rng, 6)} {named}"
            records[i] = h.make_record(fam, 600 + named, registry, text, rec["messages"][2]["content"])
            named += 1

    def plant(frame):
        frame = h.move_records(frame, lambda r: r["metadata"]["content_hash"] == original["metadata"]["content_hash"],
                               "train")
        return h.add_record_like(frame, original["metadata"]["content_hash"], copy, "test")

    root = LocalDataRoot(tmp_path_factory.mktemp("planted"))
    h.build_clean_dataset(root, registry, records=[*records, original], edit=plant)
    report = gates.verify_compiled_dataset(root, registry=registry,
                                           config=gates.GateConfig(decontamination_threshold=1.01))
    assert report.failed_gates == ["leakage", "pii"], {g.name: g.message for g in report.gates if not g.passed}
    return report


def test_leakage_finds_a_near_duplicate_pair_that_dedups_lsh_misses(planted):
    result = planted.gate("leakage")
    assert list(result.offender_counts) == ["near-duplicate clusters in several splits"]
    assert result.offender_counts["near-duplicate clusters in several splits"] == 1
    assert "near-dup cluster of 2 in test+train" in result.offenders[0]
    assert result.figures["first_user_turns_in_several_splits"] == 0  # the turn check misses it too


# --- structured PII: the gate's own patterns and libphonenumber, not the scrubber's recognizers ---

# Missed by the scrubber's structured recognizers (checked below): a Brazilian mobile number (a
# region outside the scrubber's phone list) and an address spelled out to dodge filters.
STRUCTURED_PLANTS = {"PHONE_NUMBER": "You can reach me on (11) 91234-5678 after work, I never pick up before.",
                     "EMAIL_ADDRESS": "Write to me at jane.doe(at)gmail(dot)com if the session gets cancelled."}


def test_find_structured_counts_pii_and_leaves_public_lines_placeholders_and_plain_numbers():
    from pixel_assets.lib.gates.pii_structured import find_structured, public_national_numbers, regions_of

    regions = regions_of(gates.GateConfig().pii_phone_regions)
    public = public_national_numbers(("1-800-273-TALK", "988"))
    assert find_structured("ssn 219-09-9999, card 4111 1111 1111 1111, ip 84.17.200.3", regions) == {
        "US_SSN": 1, "CREDIT_CARD": 1, "IP_ADDRESS": 1}
    assert find_structured("call (212) 555-0199 or +44 20 7946 0958", regions) == {"PHONE_NUMBER": 2}
    assert find_structured("mail me: jane.doe@example.org", regions) == {"EMAIL_ADDRESS": 1}
    for clean in ("Call 1-800-273-8255 or text 988 any time.", "my number is <PHONE_NUMBER_1>, ssn <US_SSN_2>",
                  "I slept 7 hours, woke at 3:45 and walked 10,000 steps in 2026.", "card 4111 1111 1111 1112",
                  "ssn 000-12-3456", "version 1.2 on 127.0.0.1 and 300.1.2.3"):
        assert find_structured(clean, regions, public) == {}, clean
    with pytest.raises(ValueError, match="unknown regions"):
        regions_of("US,XX")


def test_pii_gate_finds_structured_pii_the_scrubbers_recognizers_miss(planted):
    from pixel_assets.lib.pii.structured import find_structured_pii

    assert find_structured_pii(list(STRUCTURED_PLANTS.values())) == [[], []]  # the producer's method misses both
    result = planted.gate("pii")
    assert result.offender_counts["records with structured PII"] == 2
    assert result.figures["found_PHONE_NUMBER"] == 1 and result.figures["found_EMAIL_ADDRESS"] == 1
    assert "91234" not in result.markdown() and "jane" not in result.markdown()


# --- names: a gazetteer in context beside NER ---

# Lowercase given names that are also English words, after a relationship cue: missed by the
# scrubber (NER on restored case, context cues, its name list) and by NER alone (checked below).
NAME_PLANTS = ["my friend dawn is worried about me and keeps checking in",
               "honestly my cousin joy never calls me back anymore",
               "i told my sister grace that i was fine but i was not"]


def test_gazetteer_reads_names_in_context_not_ordinary_words():
    from pixel_assets.lib.gates.pii_gazetteer import gazetteer_names

    assert [gazetteer_names(t) for t in NAME_PLANTS] == [["dawn"], ["joy"], ["grace"]]
    assert gazetteer_names("Dr. Okafor said maria gonzalez would call") == ["okafor", "maria gonzalez"]
    for clean in ("I hope that helps, take care of yourself.", "will you be there? may I ask why?",
                  "my friend said it was fine", "my sister <PERSON_1> said hi", "love is hard work",
                  "in honor of your friend.  Hope this helps", "Dr. <PERSON_1> shows that"):
        assert gazetteer_names(clean) == [], clean


def test_pii_gate_fails_on_lowercase_names_the_scrubbers_ner_misses(planted):
    from pixel_assets.lib.gates.pii_names import person_spans
    from pixel_assets.lib.pii.scrubber import PiiScrubber

    assert PiiScrubber(n_process=1).detect(NAME_PLANTS) == [[], [], []]  # the producer misses them
    assert person_spans(NAME_PLANTS) == [(), (), ()]  # and so does NER alone
    result = planted.gate("pii")
    assert set(result.offender_counts) == {"records with structured PII",
                                           "sampled conversations with person names above the residual rate"}
    assert result.figures["name_sample_with_person_by_gazetteer"] >= 45
    assert result.figures["name_sample_with_person_by_ner"] <= 2
    assert result.figures["name_sample_with_person"] / result.figures["name_sample_conversations"] > 0.02
    assert not any(n in result.markdown().lower() for n in ("dawn", "joy", "grace"))


# --- the gate modules share no detector code with the producers ---

# What lib/gates may take from lib/pii: the placeholder syntax and the pipeline's own metadata
# fields (constants), and the operator's PII config (allow-lists, public lines, spaCy model name).
ALLOWED_PRODUCER_IMPORTS = {("pixel_assets.lib.pii.detection", "PLACEHOLDER_RE"),
                            ("pixel_assets.lib.pii.scrub", "PIPELINE_METADATA"),
                            ("pixel_assets.lib.pii.config", "load_config")}


def producer_imports(source: str) -> set[tuple[str, str]]:
    """(module, name) of every import of lib/dedup or lib/pii in a module's source."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [(node.module, a.name) for a in node.names]
        elif isinstance(node, ast.Import):
            names = [(a.name, "*") for a in node.names]
        else:
            continue
        found |= {(m, n) for m, n in names if m.startswith(("pixel_assets.lib.dedup", "pixel_assets.lib.pii"))}
    return found


def test_gate_modules_import_no_producer_code():
    gate_dir = Path(gates.__file__).parent
    used = {path.name: producer_imports(path.read_text()) for path in sorted(gate_dir.glob("*.py"))}
    assert {name: found - ALLOWED_PRODUCER_IMPORTS for name, found in used.items()
            if found - ALLOWED_PRODUCER_IMPORTS} == {}
    # What the gates did before this rule, lazily inside a function, is caught:
    old = "def f():\n    from pixel_assets.lib.dedup import dedup_text, near_duplicate_clusters\n"
    assert producer_imports(old) == {("pixel_assets.lib.dedup", "dedup_text"),
                                     ("pixel_assets.lib.dedup", "near_duplicate_clusters")}
    assert producer_imports("import pixel_assets.lib.pii.structured") == {("pixel_assets.lib.pii.structured", "*")}
