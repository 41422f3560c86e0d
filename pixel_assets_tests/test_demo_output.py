"""What `pixel demo` prints: record counts that explain the disabled family, and the learning
targets judged from the evaluation table and the per-stage losses."""

from types import SimpleNamespace

from pixel_assets.cli.demo import sources_line
from pixel_assets.lib.registry import load_registry
from pixel_assets.lib.training.learning_report import final_vs_untrained, stage_improvements


def test_sources_line_says_why_fewer_records_are_read():
    plan = SimpleNamespace(total_records=7145, families={
        "cptsd": SimpleNamespace(records_written=7089), "nemotron_generic": SimpleNamespace(records_written=56)})
    line = sources_line(plan, load_registry())
    assert "nemotron_generic (56 records) is disabled in the registry and not read: 7089 records to read" in line
    enabled_only = SimpleNamespace(total_records=10, families={"cptsd": SimpleNamespace(records_written=10)})
    assert "disabled" not in sources_line(enabled_only, load_registry())


def table(untrained: float, final: float) -> dict:
    cells = {"untrained": {"loss": untrained}, "base": {"loss": 3.0}, "final_model": {"loss": final}}
    return {"checkpoints": list(cells), "sections": {"test": {"cptsd": cells, "sarcasm": cells}, "holdout": {}}}


def test_final_model_target_is_half_the_untrained_loss():
    met = final_vs_untrained(table(6.2, 3.0))
    assert met["met"] is True and abs(met["ratio"] - 3.0 / 6.2) < 1e-9
    assert final_vs_untrained(table(6.2, 3.2))["met"] is False  # above half: not met
    assert final_vs_untrained({"checkpoints": ["base"], "sections": {"test": {"x": {"base": {"loss": 1.0}}}}})["met"] is None


def test_every_stage_must_lower_its_own_validation_loss():
    assert stage_improvements([("s1", 3.0, 2.5), ("s2", 2.9, 2.8)])["all_lowered"] is True
    judged = stage_improvements([("s1", 3.0, 2.5), ("s2", 2.9, 2.95), ("s3", None, 2.0)])
    assert judged["all_lowered"] is False and judged["evaluated"] == 2
    assert judged["stages"][2]["lowered"] is None  # unevaluated: not judged
