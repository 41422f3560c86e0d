"""Any scale trains: a registry whose roleplay family has one record (stage 7 trains unevaluated, with
a warning) and whose cot_reasoning family has three, none in val (stage 2 validates on a seeded
slice of its own train records), trains the whole chain, preference and evaluation included."""

import json

import dagster as dg
import polars as pl
import pytest

from pixel_assets.defs.gates.checks import verification_gates
from pixel_assets.defs.storage.resources import DataRootResource
from pixel_assets.defs.training import settings as s
from pixel_assets.defs.training.definitions import build_training_defs
from pixel_assets.lib.registry import load_registry
from pixel_assets_tests import test_gates_helpers as h
from pixel_assets_tests.test_training_chain import materializations, small_curriculum

KEEP_IN_TRAIN = {"roleplay_simulator": 1, "cot_reasoning": 3}


def keep_few(frame: pl.DataFrame) -> pl.DataFrame:
    """Only the first N train records of the small families (their other records never existed)."""
    kept, seen = [], dict.fromkeys(KEEP_IN_TRAIN, 0)
    for rec_json, split in frame.select("record", "split").iter_rows():
        family = json.loads(rec_json)["metadata"]["source_family"]
        if family in KEEP_IN_TRAIN:
            if split != "train" or seen[family] >= KEEP_IN_TRAIN[family]:
                kept.append(False)
                continue
            seen[family] += 1
        kept.append(True)
    assert seen == KEEP_IN_TRAIN
    return frame.filter(pl.Series(kept))


@dg.asset(name="compiled_dataset")
def small_families_dataset(data_root: DataRootResource) -> None:
    h.build_clean_dataset(data_root.root(), load_registry(), edit=keep_few)


@pytest.fixture(scope="module")
def small_chain(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("small")
    (tmp / "home").mkdir()
    cur = small_curriculum()
    training = build_training_defs(cur)
    assets = [small_families_dataset, verification_gates, *training.assets]
    resources = {**training.resources, "data_root": DataRootResource(local_path=str(tmp / "data")),
                 "training": s.TrainingSettings(eval_records_per_family=2, probe_max_new_tokens=4)}
    with dg.DagsterInstance.local_temp(str(tmp / "home")) as instance:
        result = dg.materialize(assets, instance=instance, resources=resources, raise_on_error=False)
        yield {"cur": cur, "result": result, "root": resources["data_root"].root()}


def test_a_one_record_family_and_a_family_without_val_records_train_the_whole_chain(small_chain):
    result, root = small_chain["result"], small_chain["root"]
    failures = [(e.step_key, e.event_specific_data.error.message[:400]) for e in result.all_events if e.is_step_failure]
    assert result.success, failures
    mats = materializations(result)
    # Stage 2: validation taken out of its three train records, counted and shown.
    stage2 = mats[s.stage_data_key("stage2_therapeutic_expertise").to_user_string()]
    assert stage2["val_source"] == "train" and stage2["val_from_train"] >= 1
    assert stage2["train_examples"] + stage2["val_examples"] == 3
    val = [json.loads(x) for x in root.read_text("training/stages/stage2_therapeutic_expertise/val.jsonl").splitlines()]
    assert val and all(r["metadata"]["val_from"] == "train" for r in val)
    assert isinstance(mats[s.checkpoint_key("stage2_therapeutic_expertise").to_user_string()]["eval_loss"], float)
    # Stage 7: one record, nothing to validate on: trained, unevaluated, said so.
    stage7 = mats[s.stage_data_key("stage7_roleplay").to_user_string()]
    assert stage7["val_source"] == "none" and stage7["val_examples"] == 0 and stage7["train_examples"] == 1
    assert "trained unevaluated" in stage7["validation"] and "taken out of its own train" in stage2["validation"]
    checkpoint7 = mats[s.checkpoint_key("stage7_roleplay").to_user_string()]
    assert checkpoint7["steps"] >= 1 and checkpoint7["eval_loss"] is None
    assert root.exists("checkpoints/final_model/adapter_model.safetensors")
    assert s.FINAL_EVALUATION_KEY.to_user_string() in mats
