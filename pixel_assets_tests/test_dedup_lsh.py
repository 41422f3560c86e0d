"""Near-duplicate detection: banding, shingling, clustering."""

from __future__ import annotations

import random

import numpy as np
import polars as pl
import pytest

from pixel_assets.lib.dedup import (
    choose_banding,
    dedup_text,
    find_near_duplicates,
    near_duplicate_clusters,
    recall_at,
    shingle_hashes,
)


def _doc(rng: random.Random, words: int = 180) -> list[str]:
    vocab_size = 30_000
    return [f"w{rng.randrange(vocab_size)}" for _ in range(words)]


def _change(words: list[str], positions: list[int]) -> list[str]:
    out = list(words)
    for p in positions:
        out[p] = f"changed{p}"
    return out


@pytest.mark.parametrize("threshold", [0.7, 0.8, 0.9])
@pytest.mark.parametrize("num_perm", [64, 128, 256])
def test_chosen_banding_reaches_target_recall_at_threshold(threshold, num_perm):
    bands, rows = choose_banding(threshold, num_perm)
    assert bands * rows <= num_perm
    assert recall_at(threshold, bands, rows) >= 0.95
    # The steepest setting that reaches the target: one more row per band would miss it.
    assert recall_at(threshold, num_perm // (rows + 1), rows + 1) < 0.95


def test_default_banding_at_0_8_and_its_s_curve():
    bands, rows = choose_banding(0.8, 128)
    assert recall_at(0.8, bands, rows) >= 0.95
    # Unrelated texts (Jaccard 0.2) almost never become candidates.
    assert recall_at(0.2, bands, rows) < 0.001


def test_short_texts_get_a_single_shingle_and_empty_texts_none():
    hashes, offsets = shingle_hashes(["one two", "one two", "one three", "", "a b c d e f"], 5)
    counts = np.diff(offsets)
    assert counts.tolist() == [1, 1, 1, 0, 2]
    assert hashes[0] == hashes[1] != hashes[2]


def test_shingle_hashes_match_python_shingle_sets():
    """Equal hashes <=> equal 5-word windows: Jaccard of hash sets == Jaccard of word tuples."""
    import re

    rng = random.Random(1)
    texts = [" ".join(f"w{rng.randrange(30)}" for _ in range(rng.randrange(0, 40))) for _ in range(60)]
    hashes, offsets = shingle_hashes(texts, 5)
    sets = [set(hashes[offsets[i] : offsets[i + 1]].tolist()) for i in range(len(texts))]
    for i in range(len(texts)):
        words = re.findall(r"\w+", texts[i])
        expected = {tuple(words[j : j + 5]) for j in range(len(words) - 4)} or (
            {tuple(words)} if words else set()
        )
        assert len(sets[i]) == len(expected)
        for j in range(i):
            other = re.findall(r"\w+", texts[j])
            other_set = {tuple(other[m : m + 5]) for m in range(len(other) - 4)} or (
                {tuple(other)} if other else set()
            )
            assert len(sets[i] & sets[j]) == len(expected & other_set)


def test_shingles_ignore_case_and_punctuation():
    h1, _ = shingle_hashes(["Hello, world! How are you today?"], 5)
    h2, _ = shingle_hashes(["hello world how are you today"], 5)
    assert h1.tolist() == h2.tolist()


def test_near_duplicates_with_a_few_changed_words_are_clustered():
    rng = random.Random(7)
    base = [_doc(rng) for _ in range(200)]
    texts = [" ".join(d) for d in base]
    texts.append(" ".join(_change(base[3], [40])))  # 1 word changed
    texts.append(" ".join(_change(base[10], [20, 90, 160])))  # 3 words changed
    labels = near_duplicate_clusters(texts)
    assert labels[200] == labels[3]
    assert labels[201] == labels[10]
    # Unrelated documents stay singletons with their own id.
    others = [i for i in range(200) if i not in (3, 10)]
    assert sorted(labels[others].tolist()) == others


def test_unrelated_documents_are_not_merged():
    rng = random.Random(11)
    texts = [" ".join(_doc(rng)) for _ in range(300)]
    result = find_near_duplicates(texts)
    assert result.stats["confirmed_pairs"] == 0
    assert len(set(result.labels.tolist())) == 300


def test_shared_system_prompt_does_not_merge_conversations():
    rng = random.Random(3)
    system = " ".join(_doc(rng, 400))  # a long shared system prompt dominates the raw text
    records = [
        {"messages": [
            {"role": "system", "content": system},
            {"role": "user", "content": " ".join(_doc(rng, 20))},
            {"role": "assistant", "content": " ".join(_doc(rng, 20))},
        ]}
        for _ in range(20)
    ]
    texts = [dedup_text(r) for r in records]
    assert all(system[:50].lower() not in t for t in texts)
    assert len(set(near_duplicate_clusters(texts).tolist())) == 20
    # Control: with the system prompt included they would all look alike.
    raw = [" ".join(m["content"] for m in r["messages"]) for r in records]
    assert len(set(near_duplicate_clusters(raw).tolist())) < 20


def test_transitive_pairs_form_one_component():
    rng = random.Random(5)
    a = _doc(rng)
    b = _change(a, [10, 40, 70])  # A~B: Jaccard ~0.84
    c = _change(b, [100, 130, 160])  # B~C ~0.84, but A~C ~0.71 (6 words apart)
    texts = [" ".join(a), " ".join(rng.sample(a, len(a))), " ".join(b), " ".join(c)]
    result = find_near_duplicates(texts, threshold=0.8)
    pairs = set(zip(result.pair_a.tolist(), result.pair_b.tolist()))
    assert (0, 2) in pairs and (2, 3) in pairs and (0, 3) not in pairs
    assert result.labels[0] == result.labels[2] == result.labels[3] == 0
    assert result.labels[1] == 1


def test_threshold_is_configurable():
    rng = random.Random(9)
    a = _doc(rng)
    b = _change(a, list(range(0, 180, 18)))  # 10 words changed: Jaccard well below 0.8
    texts = [" ".join(a), " ".join(b)]
    assert near_duplicate_clusters(texts, threshold=0.8).tolist() == [0, 1]
    assert near_duplicate_clusters(texts, threshold=0.5).tolist() == [0, 0]


def test_estimated_confirmation_also_finds_close_pairs():
    rng = random.Random(2)
    base = [_doc(rng) for _ in range(50)]
    texts = [" ".join(d) for d in base] + [" ".join(_change(base[0], [5]))]
    result = find_near_duplicates(texts, confirm="estimated")
    assert result.labels[50] == result.labels[0] == 0
    assert result.stats["confirm"] == "estimated"


def test_explicit_banding_is_validated():
    with pytest.raises(ValueError):
        near_duplicate_clusters(["a b c"], num_perm=64, bands=20, rows=8)


def test_empty_input():
    assert len(near_duplicate_clusters([])) == 0


def test_exact_jaccard_matches_python_sets_across_blocks(monkeypatch):
    import re

    from pixel_assets.lib.dedup import lsh

    monkeypatch.setattr(lsh, "JACCARD_BLOCK", 7)
    rng = random.Random(4)
    base = [_doc(rng, rng.randrange(1, 60)) for _ in range(30)]
    texts = [" ".join(d) for d in base] + [" ".join(_change(d, [0])) for d in base[:10]]
    a = np.array([rng.randrange(len(texts)) for _ in range(40)] + list(range(10)))
    b = np.array([rng.randrange(len(texts)) for _ in range(40)] + list(range(30, 40)))

    def shingles(text):
        words = re.findall(r"\w+", text)
        return {tuple(words[i : i + 5]) for i in range(len(words) - 4)} or {tuple(words)}

    got = lsh.exact_jaccard(pl.Series(texts), a, b, shingle_size=5, seed=1)
    for x, y, j in zip(a, b, got):
        sx, sy = shingles(texts[x]), shingles(texts[y])
        assert j == pytest.approx(len(sx & sy) / len(sx | sy))


def test_large_bucket_is_paired_with_a_window_and_still_one_cluster():
    from pixel_assets.lib.dedup import lsh

    rng = random.Random(6)
    base = _doc(rng)
    # 150 copies with one word changed each: one band bucket far larger than the pairing window.
    texts = [" ".join(_change(base, [i % 180])) for i in range(150)]
    result = find_near_duplicates(texts)
    assert result.stats["oversized_buckets"] > 0
    assert result.stats["candidate_pairs"] < 150 * 149 // 2
    assert set(result.labels.tolist()) == {0}
    assert lsh.MAX_BUCKET_WINDOW < 149
