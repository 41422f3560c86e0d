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


def test_the_sft_target_judges_sft_stages_from_checkpoint_metadata_only():
    """The continued-pretraining stage (on text the demo's base was pre-trained on) and the
    preference stage are shown, not judged; an SFT stage that did not lower its loss fails it."""
    import dagster as dg

    from pixel_assets.defs.training import settings as s
    from pixel_assets.defs.training.evaluation import stage_improvements as from_instance

    stages = [SimpleNamespace(name="pretrained", kind="pretrain"), SimpleNamespace(name="stage1_foundation", kind="sft"),
              SimpleNamespace(name="stage2_therapeutic_expertise", kind="sft"), SimpleNamespace(name="preference", kind="preference")]
    with dg.DagsterInstance.ephemeral() as instance:
        def record(stage: str, parent: float, own: float) -> None:
            instance.report_runless_asset_event(dg.AssetMaterialization(
                s.checkpoint_key(stage), metadata={"parent_eval_loss": parent, "eval_loss": own}))

        record("pretrained", 1.6748, 1.6752)  # not lower: a pretrain stage, not judged
        record("stage1_foundation", 2.84, 2.75)
        record("stage2_therapeutic_expertise", 2.13, 1.82)
        record("preference", 2.0, 2.6)
        judged = from_instance(instance, stages)
        assert [row["stage"] for row in judged["stages"]] == ["stage1_foundation", "stage2_therapeutic_expertise"]
        assert judged["all_lowered"] is True and judged["evaluated"] == 2
        record("stage2_therapeutic_expertise", 2.13, 2.20)  # planted: an SFT stage that got worse
        assert from_instance(instance, stages)["all_lowered"] is False


def test_library_logs_go_under_a_local_data_root_else_beside_the_instance(tmp_path):
    from pixel_assets.cli.demo_output import LOG_DIR, log_dir_for
    from pixel_assets.lib.storage import LocalDataRoot

    assert log_dir_for(LocalDataRoot(tmp_path)) == tmp_path.resolve() / "logs"
    assert log_dir_for(SimpleNamespace(bucket="pixel-data")) == LOG_DIR  # an S3 root has no local folder
