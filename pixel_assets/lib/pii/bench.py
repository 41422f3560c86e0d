"""`pixel bench pii`: the naive presidio baseline vs this project's scrubber, same corpus, same run.

Also measures re-compilation with the persistent cache: cold scrub of a corpus, then a scrub of
the corpus plus 1% new conversations against the warm cache.
"""

from __future__ import annotations

import os
import random
import tempfile
import time
from collections.abc import Callable
from typing import Any

from pixel_assets.lib import contract
from pixel_assets.lib.pii.evaluate import evaluate
from pixel_assets.lib.pii.informal import informal_set
from pixel_assets.lib.pii.labeled import (
    EVAL_TEMPLATES,
    TUNE_TEMPLATES,
    clean_conversations,
    fill,
    labeled_set,
    seeded_faker,
)


def bench_conversations(n: int, *, seed: int = 11, pii_fraction: float = 0.3,
                        informal: bool = False) -> list[list[dict[str, str]]]:
    """Therapy-style conversations; about pii_fraction of them carry PII from all templates
    (informal: chat-style messages with lowercase names from informal.py instead)."""
    rng = random.Random(seed)
    fake = seeded_faker(seed)
    convs = clean_conversations(n, seed=seed)
    if informal:
        pool = [s["full_text"] for s in informal_set(200, seed=seed, split="tune", lowercase=1.0, formal_share=0)]
        pool += [s["full_text"] for s in informal_set(200, seed=seed, split="eval", lowercase=1.0, formal_share=0)]
    templates = TUNE_TEMPLATES + EVAL_TEMPLATES
    for conv in convs:
        if informal:  # chat style: lowercase throughout
            for msg in conv:
                msg["content"] = msg["content"].lower()
        if rng.random() < pii_fraction:
            for msg in rng.sample(conv, min(len(conv), rng.randint(1, 3))):
                extra = rng.choice(pool) if informal else fill(rng.choice(templates), fake, rng)["full_text"]
                msg["content"] += " " + extra
    return convs


def _records(convs: list[list[dict[str, str]]], family: str = "bench") -> list[dict[str, Any]]:
    return [{"messages": c, "metadata": {"content_hash": contract.content_hash(c), "source_family": family,
                                           "provenance": {"processing_steps": ["ingest", "normalize"]}}}
            for c in convs]


def counsel_chat_conversations(n: int) -> list[list[dict[str, str]]]:
    """Real text: the packaged counsel-chat sample (question + therapist answer, HTML stripped)."""
    import html
    import re
    from importlib import resources

    import polars as pl

    path = resources.files("pixel_assets.data").joinpath("counsel_chat/counselchat-data.csv")
    frame = pl.read_csv(str(path)).head(n)
    strip = lambda s: html.unescape(re.sub(r"<[^>]+>", " ", s or "")).strip()  # noqa: E731
    return [[{"role": "user", "content": strip(q) or "?"}, {"role": "assistant", "content": strip(a) or "?"}]
            for q, a in zip(frame["questionText"], frame["answerText"])]


def naive_analyzer(model: str):
    """presidio AnalyzerEngine, the spaCy model, default recognizers: the baseline."""
    from pixel_assets.lib.pii.offline import configure_offline

    configure_offline()
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    provider = NlpEngineProvider(nlp_configuration={
        "nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": model}]})
    return AnalyzerEngine(nlp_engine=provider.create_engine(), supported_languages=["en"])


def _recall_samples(n: int) -> dict[str, list[dict[str, Any]]]:
    """Labeled eval samples for the recall figures: templated, and informal (1/3 names lowercase)."""
    from pixel_assets.lib.pii.informal import informal_set

    return {"labeled": labeled_set(n, seed=101, split="eval"), "informal": informal_set(n, seed=101, split="eval")}


def bench_pii(conversations: int = 200, *, recompile_conversations: int = 1000, seed: int = 11,
              mode: str = "all", corpus: str = "synthetic", recall_samples: int = 300,
              log: Callable[[str], None] = lambda _m: None) -> dict[str, Any]:
    from pixel_assets.lib.pii.cache import PiiCache
    from pixel_assets.lib.pii.detection import Detection
    from pixel_assets.lib.pii.scrub import scrub_records
    from pixel_assets.lib.pii.scrubber import PiiScrubber

    scrubber = PiiScrubber()
    out: dict[str, Any] = {"cpu_count": os.cpu_count(), "n_process": scrubber.n_process}
    if mode in ("all", "speed"):
        convs = (counsel_chat_conversations(conversations) if corpus == "counsel_chat"
                 else bench_conversations(conversations, seed=seed, informal=corpus == "informal"))
        records = _records(convs)
        messages = [m["content"] for c in convs for m in c]
        sentences = sum(len(scrubber.sentence_spans(m)) for m in messages)
        ner_sentences = sum(len(scrubber.ner_segments(m)) for m in messages)
        out["corpus"] = {"name": corpus, "conversations": len(convs), "messages": len(messages),
                         "chars": sum(len(m) for m in messages),
                         "sentences": sentences, "sentences_run_through_ner": ner_sentences}
        naive = naive_analyzer(scrubber.config.spacy_model)
        naive.analyze("warm up Sarah at 555-123-4567", language="en")
        scrubber.detect(["warm up Sarah at 555-123-4567"])
        log(f"bench pii: naive baseline over {len(messages)} messages")
        t = time.perf_counter()
        for text in messages:
            naive.analyze(text, language="en")
        naive_s = time.perf_counter() - t
        log(f"bench pii: project scrubber over {len(records)} conversations")
        t = time.perf_counter()
        scrub_records(records, family="bench", scrubber=scrubber)
        ours_s = time.perf_counter() - t
        # Recall on labeled samples, so the speed-up is not bought with missed PII.
        out["naive"] = {"seconds": round(naive_s, 4), "conversations_per_s": round(len(convs) / naive_s, 2)}
        out["project"] = {"seconds": round(ours_s, 4), "conversations_per_s": round(len(convs) / ours_s, 2)}
        for name, sample in _recall_samples(recall_samples).items():
            texts = [s["full_text"] for s in sample]
            naive_dets = [[Detection(r.start, r.end, r.entity_type, r.score) for r in naive.analyze(x, language="en")]
                          for x in texts]
            for key, dets in (("naive", naive_dets), ("project", scrubber.detect(texts))):
                result = evaluate(sample, dets)
                out[key][f"{name}_recall"] = result["overall"]["recall"]
                out[key][f"{name}_precision"] = result["overall"]["precision"]
                out[key][f"{name}_person_recall"] = result["per_type"].get("PERSON", {}).get("recall")
        out["speedup"] = round(naive_s / ours_s, 2)
    if mode in ("all", "recompile"):
        base = bench_conversations(recompile_conversations, seed=seed + 1)
        extra = bench_conversations(max(1, recompile_conversations // 100), seed=seed + 2)
        with tempfile.TemporaryDirectory() as tmp, PiiCache(os.path.join(tmp, "pii.sqlite")) as cache:
            log(f"bench pii: cold scrub of {len(base)} conversations with an empty cache")
            t = time.perf_counter()
            scrub_records(_records(base), family="bench", scrubber=scrubber, cache=cache)
            cold_s = time.perf_counter() - t
            log(f"bench pii: re-compilation with {len(extra)} new conversations")
            t = time.perf_counter()
            _c, _r, stats = scrub_records(_records(base + extra), family="bench", scrubber=scrubber, cache=cache)
            warm_s = time.perf_counter() - t
        out["recompile"] = {"conversations": len(base), "new_conversations": len(extra),
                            "cold_seconds": round(cold_s, 3), "recompile_seconds": round(warm_s, 3),
                            "recompile_fraction_of_cold": round(warm_s / cold_s, 4),
                            "cache_hits": stats["cache_hits"], "cache_misses": stats["cache_misses"]}
    return out
