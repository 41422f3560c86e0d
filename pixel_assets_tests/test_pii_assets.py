"""The PII assets' Dagster metadata: counts by default, a text preview only when opted in."""

from __future__ import annotations

import json

import dagster as dg
import polars as pl
import pytest

from pixel_assets.defs.ingest.assets import REGISTRY, normalized_key
from pixel_assets.defs.pii.assets import (
    build_pii_asset,
    pii_detector_evaluation,
    pii_detector_meets_targets,
    pii_review_queue,
    review_key,
    scrubbed_key,
)
from pixel_assets.defs.pii.resources import PiiResource
from pixel_assets.defs.storage.resources import DataRootResource
from pixel_assets.lib import contract
from pixel_assets.lib.pii.evaluate import (
    MAX_FALSE_DETECTIONS_PER_CLEAN_CONVERSATION,
    MIN_OVERALL_PRECISION,
    RECALL_TARGETS,
)
from pixel_assets_tests.test_pii_scrub import record

FAMILY = "cptsd"
RAW_NAME = "Margaret Okafor"
RAW_EMAIL = "maggie.okafor@example.net"
# Words of every message below: none may reach the metadata unless the preview is opted in.
SYSTEM = "You are a gentle counsellor named Quillon."
NAMED_USER = f"My sister {RAW_NAME} keeps calling me selfish and I cannot sleep."
NAMED_REPLY = "That sounds exhausting, Zephyrine wonders how long this has been going on."
CLEAN_USER = "Since the winter I feel a heaviness I cannot name, like wading through marmalade."
CLEAN_REPLY = "Thank you for trusting me with the marmalade feeling."
EMAIL_USER = f"Please send the worksheet to {RAW_EMAIL} after the session, the grapefruit one."
UNSURE_USER = "My member id might be 536228726, not sure, the tangerine card."
MESSAGE_WORDS = ["Quillon", "selfish", "Zephyrine", "marmalade", "worksheet", "grapefruit", "tangerine",
                 RAW_NAME, "Okafor", RAW_EMAIL, "536228726"]


def _frame() -> pl.DataFrame:
    def conv(*turns, system=False):
        msgs = [{"role": "system", "content": SYSTEM}] if system else []
        msgs += [{"role": "user" if i % 2 == 0 else "assistant", "content": t} for i, t in enumerate(turns)]
        return record(msgs, family=FAMILY)

    return contract.records_to_frame([
        conv(NAMED_USER, NAMED_REPLY, system=True),  # scrubbed: PERSON
        conv(CLEAN_USER, CLEAN_REPLY),  # none_detected
        conv(EMAIL_USER, "Okay."),  # scrubbed: EMAIL_ADDRESS
        conv(UNSURE_USER, "Okay."),  # requires_review: US_SSN (uncertain)
    ])


def _materialize(tmp_path, run_config=None) -> dg.ExecuteInProcessResult:
    frame = _frame()

    @dg.asset(key=normalized_key(FAMILY))
    def normalized() -> pl.DataFrame:
        return frame

    return dg.materialize(
        [normalized, build_pii_asset(REGISTRY[FAMILY])],
        resources={"pii": PiiResource(use_cache=False), "data_root": DataRootResource(local_path=str(tmp_path))},
        run_config=run_config,
    )


def _metadata(result: dg.ExecuteInProcessResult, key: dg.AssetKey) -> dict:
    [event] = [m for m in result.get_asset_materialization_events() if m.asset_key == key]
    return event.materialization.metadata


def _text(metadata: dict) -> str:
    return json.dumps({k: str(v.value) for k, v in metadata.items()})


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    return _materialize(tmp_path_factory.mktemp("pii_default"))


def test_default_metadata_holds_counts_and_no_message_text(default_run):
    scrubbed = _metadata(default_run, scrubbed_key(FAMILY))
    review = _metadata(default_run, review_key(FAMILY))
    assert "preview" not in scrubbed
    blob = _text(scrubbed) + _text(review)
    for word in MESSAGE_WORDS:
        assert word not in blob, word
    assert "<PERSON_1>" not in blob and "<EMAIL_ADDRESS_1>" not in blob  # no scrubbed text either
    assert scrubbed["dagster/row_count"].value == 3 and scrubbed["requires_review"].value == 1
    replaced = scrubbed["replaced_by_entity_type"].value
    assert "| entity type | count |" in replaced
    # the counsellor "named Quillon" in the system turn is a name too (a context cue finds it)
    assert "| PERSON | 2 |" in replaced and "| EMAIL_ADDRESS | 1 |" in replaced
    statuses = scrubbed["records_by_pii_status"].value
    assert "| scrubbed | 2 |" in statuses and "| none_detected | 1 |" in statuses
    assert "| requires_review | 1 |" in statuses
    assert review["dagster/row_count"].value == 1
    assert "| US_SSN | 1 |" in review["uncertain_by_entity_type"].value
    # over-redaction at a glance (issue 17): placeholders per 1,000 words of the scrubbed records
    assert 0 < scrubbed["placeholders_per_1000_words"].value < 1000


def test_pii_assets_carry_the_ingest_family_tags():
    fam = REGISTRY[FAMILY]
    pii = build_pii_asset(fam)
    expected = {"family": FAMILY, "required": str(fam.required).lower()}
    from pixel_assets.defs.ingest.assets import build_ingest_asset

    ingest = build_ingest_asset(fam).specs_by_key[normalized_key(FAMILY)].tags
    for key in (scrubbed_key(FAMILY), review_key(FAMILY)):
        tags = pii.specs_by_key[key].tags
        assert expected.items() <= tags.items(), (key, tags)
        assert {k: ingest[k] for k in expected} == {k: tags[k] for k in expected}


def test_preview_is_opt_in_and_shows_scrubbed_first_user_turns(tmp_path):
    config = {"ops": {f"pii_{FAMILY}": {"config": {"metadata_preview": True, "preview_chars": 60}}}}
    scrubbed = _metadata(_materialize(tmp_path, config), scrubbed_key(FAMILY))
    preview = scrubbed["preview"].value
    # The first user turn only, from scrubbed text, truncated; records of either clean status.
    assert "My sister <PERSON_2> keeps calling me" in preview  # <PERSON_1>: Quillon, in the system turn
    assert "Since the winter I feel a heaviness I" in preview and "marmalade" not in preview
    assert "Please send the worksheet to <EMAIL_ADDRESS_1> after" in preview
    assert "| scrubbed |" in preview and "| none_detected |" in preview
    for word in ("Quillon", "Zephyrine", RAW_NAME, "Okafor", RAW_EMAIL, "536228726", "tangerine"):
        assert word not in preview, word
    rows = [line for line in preview.splitlines() if line.startswith("| ") and "content_hash" not in line]
    assert len(rows) == 3
    assert all(len(line.split(" | ")[-1].rstrip(" |")) <= 60 for line in rows)


def test_review_queue_counts_records_per_family(tmp_path):
    frame = _frame()

    @dg.asset(key=normalized_key(FAMILY))
    def normalized() -> pl.DataFrame:
        return frame

    others = [f.name for f in REGISTRY.families if f.name != FAMILY]

    def empty(name):
        @dg.asset(key=review_key(name))
        def _empty() -> pl.DataFrame:
            return contract.empty_records_frame()

        return _empty

    result = dg.materialize(
        [normalized, build_pii_asset(REGISTRY[FAMILY]), pii_review_queue, *[empty(n) for n in others]],
        selection=[normalized_key(FAMILY), scrubbed_key(FAMILY), review_key(FAMILY), dg.AssetKey("pii_review_queue"),
                   *[review_key(n) for n in others]],
        resources={"pii": PiiResource(use_cache=False), "data_root": DataRootResource(local_path=str(tmp_path))},
    )
    table = _metadata(result, dg.AssetKey("pii_review_queue"))["by_family"].value
    assert table.splitlines()[0] == "| source_family | records |"
    assert f"| {FAMILY} | 1 |" in table


def test_detector_check_reports_targets_next_to_measured_figures(tmp_path):
    result = dg.materialize(
        [pii_detector_evaluation, pii_detector_meets_targets],
        resources={"pii": PiiResource(use_cache=False), "data_root": DataRootResource(local_path=str(tmp_path))},
        run_config={"ops": {"pii_detector_evaluation": {"config": {"labeled_samples": 150, "informal_samples": 60,
                                                                   "clean_conversations": 10}}}},
    )
    [evaluation] = result.get_asset_check_evaluations()
    [spec] = pii_detector_meets_targets.check_specs
    assert spec.description and "RECALL_TARGETS" in spec.description
    meta = evaluation.metadata
    table = meta["recall_by_entity_type"].value
    header = "| entity type | target recall | measured recall | precision | support | meets target |"
    assert table.splitlines()[0] == header
    for entity, target in RECALL_TARGETS.items():
        assert f"| {entity} | ≥ {target:.2f} | " in table
    [location] = [line for line in table.splitlines() if line.startswith("| LOCATION |")]
    cells = [c.strip() for c in location.strip("|").split("|")]
    assert cells[1] == "—" and cells[5] == "—"
    assert float(cells[2]) > 0 and int(cells[4]) > 0  # measured even without a target
    overall = meta["precision_and_over_redaction"].value
    assert f"≥ {MIN_OVERALL_PRECISION:.2f}" in overall
    assert f"≤ {MAX_FALSE_DETECTIONS_PER_CLEAN_CONVERSATION:.2f}" in overall
    assert "| informal text (lowercase all): PERSON recall | ≥ 0.80 |" in overall
    # Targets are text, never numbers the UI would plot as a flat time series.
    assert all(isinstance(v, (dg.MarkdownMetadataValue, dg.TextMetadataValue)) for v in meta.values())


def test_detector_evaluation_is_cached_by_detector_fingerprint_and_settings(tmp_path, monkeypatch):
    """A second run with the same detector and evaluation settings reads the figures computed first
    (the evaluation itself would raise); other settings compute again."""
    from pixel_assets.lib.pii import evaluate

    resources = {"pii": PiiResource(), "data_root": DataRootResource(local_path=str(tmp_path))}

    def run(seed: int):
        config = {"labeled_samples": 40, "informal_samples": 0, "clean_conversations": 4, "seed": seed}
        result = dg.materialize([pii_detector_evaluation], resources=resources,
                                run_config={"ops": {"pii_detector_evaluation": {"config": config}}})
        return result.output_for_node("pii_detector_evaluation"), _metadata(result, dg.AssetKey("pii_detector_evaluation"))

    first, meta = run(13)
    assert meta["from_cache"].value is False
    real = evaluate.evaluate_detector
    monkeypatch.setattr(evaluate, "evaluate_detector", lambda *a, **k: (_ for _ in ()).throw(AssertionError("recomputed")))
    again, meta = run(13)
    assert meta["from_cache"].value is True and again == first
    monkeypatch.setattr(evaluate, "evaluate_detector", real)
    _, meta = run(14)  # another evaluation seed: another key, computed
    assert meta["from_cache"].value is False
