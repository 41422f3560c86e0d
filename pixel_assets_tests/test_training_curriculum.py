"""The curriculum file: the packaged defaults and profiles load, and each validation error names
the stage and the field (one planted defect per test, on a copy of the packaged file)."""

from __future__ import annotations

import copy
import json
from importlib import resources

import pytest
import yaml

from pixel_assets.lib.registry import load_registry
from pixel_assets.lib.training.curriculum import CurriculumError, load_curriculum, parse_curriculum

REGISTRY = load_registry()


@pytest.fixture(scope="module")
def raw() -> dict:
    return yaml.safe_load(resources.files("pixel_assets.config").joinpath("curriculum.yaml").read_text("utf-8"))


def stage_of(data: dict, name: str) -> dict:
    return next(s for s in data["stages"] if s["name"] == name)


def refused(data: dict, *fragments: str, profile: str | None = None) -> str:
    with pytest.raises(CurriculumError) as err:
        parse_curriculum(data, REGISTRY, profile)
    for fragment in fragments:
        assert fragment in str(err.value), str(err.value)
    return str(err.value)


def test_packaged_curriculum_is_spec_section_7():
    c = load_curriculum(registry=REGISTRY)
    assert c.base_model is None  # the embedded tiny model
    chain = [s.name for s in c.sft_chain()]
    assert chain == ["pretrained", "stage1_foundation", "stage2_therapeutic_expertise", "stage3_edge_stress_test",
                     "stage4_voice_persona", "stage5_long_running", "stage6_specialized", "stage7_roleplay"]
    assert not c.stage("stage0_generic_reasoning").enabled
    s1 = c.stage("stage1_foundation")
    assert (s1.families, s1.epochs, s1.learning_rate, s1.max_length) == (
        {"professional_therapeutic": 0.4, "priority_datasets": 0.4, "mental_health_datasets": 0.2}, 2, 3e-4, 4096)
    assert c.stage("stage5_long_running").packing and c.stage("stage5_long_running").max_length == 8192
    pref = c.preference_stage()
    assert (pref.algorithm, pref.beta, pref.source_weights, pref.learning_rate) == (
        "orpo", 0.1, {"dpo_preference": 0.5, "roleplay": 0.3, "edge_case": 0.2}, 3e-5)
    assert pref.rejected_source == "stage7_roleplay" and pref.num_samples == 1
    assert abs(sum(pref.families.values()) - 1) < 1e-9
    assert c.tokens_per_second_h100 > 0 and "H100" in c.throughput_source


def test_profiles_demo_and_production():
    demo = load_curriculum(registry=REGISTRY, profile="demo")
    assert all(s.max_steps and s.max_train_records for s in demo.all_stages)
    assert [s.name for s in demo.stages] == [s.name for s in demo.sft_chain()] + ["preference"]
    assert demo.stage("stage1_foundation").max_length == 512
    assert demo.stage("stage1_foundation").epochs == 2  # stage values not named by the profile stay
    assert demo.base_pretrain["max_steps"] > 0  # the demo's tiny base is pre-trained
    prod = load_curriculum(registry=REGISTRY, profile="production")
    assert prod.base_model == "LatitudeGames/Wayfarer-2-12B"
    assert prod.checkpoint_store == "s3://pixelated-checkpoints/foundation/"


def test_a_file_chosen_by_env_var_changes_what_the_definitions_train(raw, tmp_path, monkeypatch):
    """PIXEL_CURRICULUM / PIXEL_CURRICULUM_PROFILE change what runs: the training definitions built
    from them lose the stage the file disables, stage 2's checkpoint gets another code version (so
    it shows stale), stage 1's does not, and the trainer config built for stage 2 carries the
    file's early-stopping patience and the profile's step cap."""
    from pixel_assets.defs.training import settings as s
    from pixel_assets.defs.training.definitions import build_training_defs
    from pixel_assets.lib.training.sft import SFTStageConfig

    def checkpoint_code_versions() -> dict[str, str | None]:
        return {k.path[-1].removesuffix("_checkpoint"): version for a in build_training_defs().assets
                for k, version in a.code_versions_by_key.items() if k.path[0] == "checkpoints"}

    monkeypatch.delenv("PIXEL_CURRICULUM", raising=False)
    monkeypatch.delenv("PIXEL_CURRICULUM_PROFILE", raising=False)
    packaged = checkpoint_code_versions()
    data = copy.deepcopy(raw)
    stage_of(data, "stage2_therapeutic_expertise")["early_stopping_patience"] = 5
    stage_of(data, "stage6_specialized")["enabled"] = False
    stage_of(data, "stage7_roleplay")["from"] = "stage5_long_running"
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(data))
    monkeypatch.setenv("PIXEL_CURRICULUM", str(path))
    monkeypatch.setenv("PIXEL_CURRICULUM_PROFILE", "demo")
    mine = checkpoint_code_versions()
    assert "stage6_specialized" in packaged and "stage6_specialized" not in mine
    assert mine["stage2_therapeutic_expertise"] != packaged["stage2_therapeutic_expertise"]
    demo = load_curriculum(registry=REGISTRY, profile="demo")
    assert mine["stage1_foundation"] == s.code_version(demo.stage("stage1_foundation"))  # the profile, not the edit
    trainer = SFTStageConfig.from_stage(s.curriculum().stage("stage2_therapeutic_expertise"))
    assert (trainer.early_stopping_patience, trainer.max_steps) == (5, demo.stage("stage2_therapeutic_expertise").max_steps)


def test_config_hash_changes_with_a_training_setting_only(raw):
    a = parse_curriculum(raw, REGISTRY)
    data = copy.deepcopy(raw)
    stage_of(data, "stage3_edge_stress_test")["learning_rate"] = 1e-4
    b = parse_curriculum(data, REGISTRY)
    assert a.stage("stage3_edge_stress_test").config_hash() != b.stage("stage3_edge_stress_test").config_hash()
    assert a.stage("stage2_therapeutic_expertise").config_hash() == b.stage("stage2_therapeutic_expertise").config_hash()


def test_unknown_family(raw):
    data = copy.deepcopy(raw)
    stage_of(data, "stage2_therapeutic_expertise")["families"] = {"cot_reasonin": 1.0}
    refused(data, "'stage2_therapeutic_expertise'", "'families'", "unknown family 'cot_reasonin'")


def test_weights_not_summing_to_one(raw):
    data = copy.deepcopy(raw)
    stage_of(data, "stage6_specialized")["families"]["experimental"] = 0.2
    refused(data, "'stage6_specialized'", "'families'", "sum to 1.1")


def test_test_only_family(raw):
    data = copy.deepcopy(raw)
    stage_of(data, "stage3_edge_stress_test")["families"] = {"edge_case_generator": 0.5, "edge_case_crisis": 0.5}
    refused(data, "'stage3_edge_stress_test'", "'families'", "'edge_case_crisis' is test-only")


def test_test_only_family_in_a_preference_source(raw):
    data = copy.deepcopy(raw)
    stage_of(data, "preference")["source_families"]["edge_case"] = ["edge_case_crisis"]
    refused(data, "'preference'", "'source_families.edge_case'", "test-only")


@pytest.mark.parametrize("splits", [["train", "val"], ["test"], ["val"]])
def test_split_other_than_train(raw, splits):
    data = copy.deepcopy(raw)
    stage_of(data, "stage4_voice_persona")["splits"] = splits
    refused(data, "'stage4_voice_persona'", "'splits'", "train split only")


def test_missing_hyperparameter(raw):
    data = copy.deepcopy(raw)
    del stage_of(data, "stage7_roleplay")["learning_rate"]
    refused(data, "'stage7_roleplay'", "'learning_rate'", "missing")


@pytest.mark.parametrize("field,value", [("learning_rate", 0), ("epochs", -1), ("per_device_batch_size", 0),
                                         ("max_length", 0), ("gradient_accumulation_steps", 1.5)])
def test_non_positive_hyperparameter(raw, field, value):
    data = copy.deepcopy(raw)
    stage_of(data, "stage1_foundation")[field] = value
    refused(data, "'stage1_foundation'", f"'{field}'", "positive")


def test_context_longer_than_the_model_allows(raw):
    data = copy.deepcopy(raw)
    stage_of(data, "stage5_long_running")["max_length"] = 16384
    refused(data, "'stage5_long_running'", "'max_length'", "longer than the model allows (8192")


def test_context_checked_against_the_profile_model(raw):
    data = copy.deepcopy(raw)
    data["profiles"]["demo"]["model_max_length"] = 1024  # demo stage 5 asks for 2048
    refused(data, "'stage5_long_running'", "'max_length'", "(1024", profile="demo")


def test_from_not_the_previous_stage(raw):
    data = copy.deepcopy(raw)
    stage_of(data, "stage4_voice_persona")["from"] = "stage2_therapeutic_expertise"
    refused(data, "'stage4_voice_persona'", "'from'", "'stage3_edge_stress_test'")


def test_enabling_stage0_needs_pretrained_to_continue_from_it(raw):
    data = copy.deepcopy(raw)
    stage_of(data, "stage0_generic_reasoning")["enabled"] = True
    refused(data, "'pretrained'", "'from'", "'stage0_generic_reasoning'")
    stage_of(data, "pretrained")["from"] = "stage0_generic_reasoning"
    c = parse_curriculum(data, REGISTRY)
    assert c.sft_chain()[0].name == "stage0_generic_reasoning"


def test_from_skipping_a_disabled_stage_is_the_previous_enabled_one(raw):
    data = copy.deepcopy(raw)
    stage_of(data, "stage6_specialized")["enabled"] = False
    refused(data, "'stage7_roleplay'", "'from'", "'stage5_long_running'")
    stage_of(data, "stage7_roleplay")["from"] = "stage5_long_running"
    assert "stage6_specialized" not in [s.name for s in parse_curriculum(data, REGISTRY).sft_chain()]


def test_unknown_stage_field(raw):
    data = copy.deepcopy(raw)
    stage_of(data, "stage2_therapeutic_expertise")["learning_rte"] = 1e-4
    refused(data, "'stage2_therapeutic_expertise'", "'learning_rte'", "unknown field")


def test_unknown_preference_algorithm(raw):
    data = copy.deepcopy(raw)
    stage_of(data, "preference")["algorithm"] = "ppo"
    refused(data, "'preference'", "'algorithm'", "orpo, simpo, dpo, kto")


@pytest.mark.parametrize("algorithm,settings,field", [
    ("simpo", {"gamma_beta_ratio": 1.5}, "algorithm_settings.gamma_beta_ratio"),
    ("simpo", {"cpo_alpha": -0.1}, "algorithm_settings.cpo_alpha"),
    ("dpo", {"loss_type": "nonsense"}, "algorithm_settings.loss_type"),
    ("dpo", {"label_smoothing": 0.5}, "algorithm_settings.label_smoothing"),
    ("kto", {"desirable_weight": 0}, "algorithm_settings.desirable_weight"),
    ("kto", {"undesirable_weight": -1.0}, "algorithm_settings.undesirable_weight"),
    ("orpo", {"gamma_beta_ratio": 0.5}, "algorithm_settings"),  # a SimPO setting given to ORPO
])
def test_invalid_preference_algorithm_settings(raw, algorithm, settings, field):
    data = copy.deepcopy(raw)
    stage_of(data, "preference").update(algorithm=algorithm, algorithm_settings=settings)
    refused(data, "'preference'", f"'{field}'")


def test_kto_needs_a_batch_of_two(raw):
    data = copy.deepcopy(raw)
    stage_of(data, "preference").update(algorithm="kto", per_device_batch_size=1)
    refused(data, "'preference'", "'per_device_batch_size'", "KTO needs a batch of at least 2")


def test_preference_stage_takes_sources_not_families(raw):
    data = copy.deepcopy(raw)
    stage_of(data, "preference")["families"] = {"dpo_preference": 1.0}
    refused(data, "'preference'", "'families'", "source_weights")


@pytest.mark.parametrize("algorithm,settings", [
    ("simpo", {"gamma_beta_ratio": 0.3, "cpo_alpha": 0.0}), ("dpo", {"loss_type": "ipo"}),
    ("kto", {"desirable_weight": 1.33, "undesirable_weight": 1.0}), ("orpo", {}),
])
def test_valid_preference_algorithm_settings(raw, algorithm, settings):
    data = copy.deepcopy(raw)
    stage_of(data, "preference").update(algorithm=algorithm, algorithm_settings=settings)
    pref = parse_curriculum(data, REGISTRY).preference_stage()
    assert pref.algorithm == algorithm and all(pref.algorithm_settings[k] == v for k, v in settings.items())


@pytest.mark.parametrize("field,value,message", [
    ("beta", 0, "positive"), ("source_weights", {"dpo_preference": 0.5, "roleplay": 0.3, "edge_case": 0.3}, "sum to"),
    ("rejected_source", "stage6_specialized", "must be one of"), ("num_samples", 0, "positive"),
    ("sampling", {"top_p": 1.5}, "sampling.top_p"),
])
def test_invalid_preference_settings(raw, field, value, message):
    data = copy.deepcopy(raw)
    stage_of(data, "preference")[field] = value
    refused(data, "'preference'", message)


def test_config_hash_is_stable_json():
    c = load_curriculum(registry=REGISTRY)
    hashes = {s.name: s.config_hash() for s in c.stages}
    assert len(set(hashes.values())) == len(hashes)
    assert json.loads(json.dumps(hashes)) == {s.name: s.config_hash() for s in load_curriculum(registry=REGISTRY).stages}


# --- `pixel curriculum` -------------------------------------------------------------------------


def run_cli(capsys, *argv: str) -> tuple[int, str]:
    from pixel_assets.cli import main

    code = main(["curriculum", *argv])
    return code, capsys.readouterr().out


def test_pixel_curriculum_without_a_published_dataset_says_so(capsys, tmp_path):
    code, out = run_cli(capsys, "--root", str(tmp_path))
    assert code == 0
    assert "no published dataset at" in out and "stage5_long_running [sft] from stage4_voice_persona" in out
    assert "tokens/s — source: estimate, not a measurement" in out
    code, out = run_cli(capsys, "--root", str(tmp_path), "--json")
    plan = json.loads(out)
    assert plan["dataset"] is None and plan["total_steps"] is None
    assert plan["stages"][2]["families"] == {"professional_therapeutic": 0.4, "priority_datasets": 0.4,
                                             "mental_health_datasets": 0.2}


def test_pixel_curriculum_plans_from_the_published_dataset(capsys, tmp_path):
    from pixel_assets.lib.storage import LocalDataRoot
    from pixel_assets.lib.training.packing import template_ids
    from pixel_assets.lib.training.plan import read_published_records
    from pixel_assets_tests.test_gates_helpers import build_clean_dataset
    from pixel_assets_tests.training_records import tiny_tokenizer

    root = LocalDataRoot(tmp_path)
    build_clean_dataset(root, REGISTRY)
    tok = tiny_tokenizer()
    tok.save_pretrained(tmp_path / "models" / "base")
    code, out = run_cli(capsys, "--root", str(tmp_path), "--profile", "demo", "--json")
    plan = json.loads(out)
    assert code == 0 and plan["dataset"].endswith("final_dataset/manifest.json")
    assert plan["token_count"].startswith("tokenizer + chat template")
    train = read_published_records(root)["train"]
    s3 = next(r for r in plan["stages"] if r["stage"] == "stage3_edge_stress_test")
    mine = [r for r in train if r["metadata"]["source_family"] == "edge_case_generator"]
    assert s3["available"]["edge_case_generator"] == {
        "conversations": len(mine), "tokens": sum(len(i) for i in template_ids(tok, [r["messages"] for r in mine]))}
    assert 0 < s3["steps"] <= load_curriculum(profile="demo").stage("stage3_edge_stress_test").max_steps  # the demo profile caps it
    assert s3["h100_hours"] == round(s3["tokens_trained"] / plan["tokens_per_second_h100"] / 3600, 4)
    assert plan["total_steps"] == sum(r["steps"] for r in plan["stages"] if r["enabled"])
    from pixel_assets.cli.training import print_plan

    print_plan(plan)  # the text form of the same plan
    text = capsys.readouterr().out
    assert "edge_case_generator" in text and "H100 h" in text and "total:" in text


def test_pixel_curriculum_reports_an_invalid_file_in_one_line(capsys, tmp_path, raw):
    from pixel_assets.cli import main

    data = copy.deepcopy(raw)
    stage_of(data, "stage6_specialized")["families"]["cptsd"] = 0.5
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    assert main(["curriculum", "--file", str(path), "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("pixel curriculum: error: ")
    assert "'stage6_specialized'" in err[0] and "'families'" in err[0]
