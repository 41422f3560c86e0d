"""Stage C: preference data (sources, weights, drops, splits, KTO rows) and the four trainers."""

from __future__ import annotations

import json

import pytest

from pixel_assets.lib.storage import LocalDataRoot
from pixel_assets.lib.training.preference import (
    DATA_PREFIX, build_preference_data, kto_rows, split_reference, write_preference_data,
)
from pixel_assets.lib.training.preference_config import PreferenceConfig, PreferenceConfigError
from pixel_assets.lib.training.sampling import SamplingConfig, checkpoint_sampler
from pixel_assets_tests.pref_helpers import build_adapter, build_base, records

FAST = dict(max_steps=1, per_device_batch_size=2, save_steps=1, eval_steps=1, max_length=256,
            sampling=SamplingConfig(max_new_tokens=8))


def _records(n_dpo=40, n_role=30, n_edge=30):
    return (records("dpo_preference", "train", n_dpo) + records("roleplay_simulator", "train", n_role)
            + records("edge_case_resulting_chats", "train", n_edge // 2)
            + records("safety_guardrails_annihilator", "train", n_edge - n_edge // 2))


class StubSampler:
    """Answers "sampled <n>"; remembers every prompt it was asked."""

    def __init__(self, answer=None):
        self.asked, self.answer = [], answer

    def __call__(self, prompts):
        self.asked += [json.dumps(p) for p in prompts]
        return [[self.answer(p) if self.answer else f"sampled {len(self.asked)} {i}"] for i, p in enumerate(prompts)]


def test_dpo_records_are_pairs_as_they_are_and_reference_pairs_use_the_last_assistant_turn():
    dpo = records("dpo_preference", "train", 1)[0]
    role = records("roleplay_simulator", "train", 1, turns=3, system=True)[0]
    cfg = PreferenceConfig(source_weights={"dpo_preference": 0.5, "roleplay": 0.5, "edge_case": 0.0})
    data = build_preference_data(cfg, [dpo, role], StubSampler(lambda p: "a sampled reply"))
    by_source = {p["metadata"]["source"]: p for p in data.train}
    pair = by_source["dpo_preference"]
    assert pair["prompt"] == dpo["messages"][:1]
    assert pair["chosen"] == dpo["messages"][1:]
    assert pair["rejected"] == [{"role": "assistant", "content": dpo["metadata"]["rejected_response"]}]
    rp = by_source["roleplay"]
    assert rp["prompt"] == role["messages"][:-1] and rp["prompt"][0]["role"] == "system"
    assert rp["chosen"] == role["messages"][-1:]
    assert rp["rejected"][0]["content"] == "a sampled reply"
    assert rp["metadata"]["rejected_from"] == "stage7_roleplay"
    # An edge-case prompt/response record has the therapist first: no user turn before it, no pair.
    assert split_reference([{"role": "assistant", "content": "a"}, {"role": "user", "content": "b"}]) is None


def test_weights_are_met_by_down_sampling_and_stats_show_them():
    sampler = StubSampler()
    data = build_preference_data(PreferenceConfig(), _records(), sampler)
    stats = data.stats["train"]
    counts = stats["pairs_per_source"]
    total = sum(counts.values())
    for source, target in {"dpo_preference": 0.5, "roleplay": 0.3, "edge_case": 0.2}.items():
        assert abs(counts[source] / total - target) <= 0.02, (source, counts)
        assert stats["achieved_weights"][source] == pytest.approx(counts[source] / total, abs=1e-4)
    assert counts["dpo_preference"] == 40  # dpo is the scarcest here: 40 / .5 = 80 pairs
    # Sampled sources stop asking the stage-7 model once their share is filled.
    assert len(sampler.asked) == counts["roleplay"] + counts["edge_case"] == 40
    again = build_preference_data(PreferenceConfig(), list(reversed(_records())), StubSampler())
    assert [p["metadata"]["content_hash"] for p in again.train] == [p["metadata"]["content_hash"] for p in data.train]


def test_pairs_with_empty_or_identical_rejected_are_dropped_and_counted():
    recs = _records(n_dpo=10, n_role=10, n_edge=0)
    recs[0]["metadata"]["rejected_response"] = recs[0]["messages"][-1]["content"] + "  "  # same text
    chosen_of = {json.dumps(r["messages"][:-1]): r["messages"][-1]["content"] for r in recs}
    calls = {"n": 0}

    def answer(prompt):
        calls["n"] += 1
        return ["", chosen_of[json.dumps(prompt)], "a different reply"][calls["n"] % 3]

    cfg = PreferenceConfig(source_weights={"dpo_preference": 0.5, "roleplay": 0.5, "edge_case": 0.0})
    data = build_preference_data(cfg, recs, StubSampler(answer))
    dropped = data.stats["train"]["dropped"]
    assert dropped["dpo_preference"] == {"rejected_equals_chosen": 1}
    assert dropped["roleplay"]["rejected_empty"] >= 1 and dropped["roleplay"]["rejected_equals_chosen"] >= 1
    for p in data.train:
        assert p["rejected"][0]["content"].strip()
        assert " ".join(p["rejected"][0]["content"].split()) != " ".join(p["chosen"][0]["content"].split())
    counts = data.stats["train"]["pairs_per_source"]
    assert counts["dpo_preference"] == counts["roleplay"]  # the short source limits the other


def test_the_first_usable_of_several_samples_is_the_rejected_response():
    recs = records("roleplay_simulator", "train", 5)
    chosen_of = {json.dumps(r["messages"][:-1]): r["messages"][-1]["content"] for r in recs}

    class TwoSamples:
        def __call__(self, prompts):
            return [["", chosen_of[json.dumps(p)], "first usable", "second usable"] for p in prompts]

    cfg = PreferenceConfig(source_weights={"dpo_preference": 0.0, "roleplay": 1.0, "edge_case": 0.0},
                           sampling=SamplingConfig(num_samples=4))
    data = build_preference_data(cfg, recs, TwoSamples())
    assert [p["rejected"][0]["content"] for p in data.train] == ["first usable"] * 5
    assert {p["metadata"]["sample_index"] for p in data.train} == {2}
    assert data.stats["train"]["dropped"]["roleplay"] == {"rejected_empty": 5, "rejected_equals_chosen": 5}


def test_over_length_pairs_are_left_out_and_counted():
    from pixel_assets.lib.training.models import build_tokenizer

    tok = build_tokenizer(["a few words to learn from"] * 20, vocab_size=280)
    recs = records("dpo_preference", "train", 6)
    recs[0]["metadata"]["rejected_response"] = "word " * 300
    cfg = PreferenceConfig(rejected_source="none", max_length=120)
    data = build_preference_data(cfg, recs, tokenizer=tok)
    assert data.stats["train"]["dropped"] == {"dpo_preference": {"over_length": 1}}
    assert data.stats["train"]["pairs"] == 5


def test_rejected_source_none_turns_sampled_pairs_off():
    data = build_preference_data(PreferenceConfig(rejected_source="none"), _records(), sampler=None)
    assert data.stats["train"]["pairs_per_source"] == {"dpo_preference": 40, "roleplay": 0, "edge_case": 0}
    with pytest.raises(ValueError, match="no sampler"):
        build_preference_data(PreferenceConfig(), _records(), sampler=None)


def test_no_test_split_record_is_used():
    test_recs = (records("dpo_preference", "test", 10, seed=9) + records("roleplay_simulator", "test", 10, seed=9)
                 + records("edge_case_crisis", "test", 5, seed=9, holdout="family"))
    val_recs = records("dpo_preference", "val", 6, seed=7) + records("roleplay_simulator", "val", 4, seed=7)
    sampler = StubSampler()
    data = build_preference_data(PreferenceConfig(), _records() + test_recs + val_recs, sampler,
                                 val_records=val_recs + test_recs)
    test_hashes = {r["metadata"]["content_hash"] for r in test_recs}
    test_prompts = {json.dumps(r["messages"][:-1]) for r in test_recs}
    used = data.train + data.val + data.kto_train + data.kto_val
    assert used and not test_hashes & {p["metadata"]["content_hash"] for p in used}
    assert not test_prompts & set(sampler.asked)  # the stage-7 model never saw a test prompt either
    assert {p["metadata"]["split"] for p in data.train} == {"train"} and {p["metadata"]["split"] for p in data.val} == {"val"}
    assert data.stats["train"]["records_other_split"] == len(test_recs) + len(val_recs)


def test_kto_rows_are_derived_from_the_pairs_and_files_are_written(tmp_path):
    data = build_preference_data(PreferenceConfig(), _records(), StubSampler(),
                                 val_records=records("dpo_preference", "val", 4))
    rows = kto_rows(data.train)
    assert rows == data.kto_train
    assert sum(r["label"] for r in rows) == sum(not r["label"] for r in rows) == len(data.train)
    root = LocalDataRoot(tmp_path)
    keys = write_preference_data(root, data)
    assert keys["train"] == f"{DATA_PREFIX}/train.jsonl" and keys["kto_train"] == f"{DATA_PREFIX}/kto_train.jsonl"
    lines = root.read_text(keys["train"]).splitlines()
    assert [json.loads(x) for x in lines] == json.loads(json.dumps(data.train))
    assert len(root.read_text(keys["val"]).splitlines()) == len(data.val) == 4


@pytest.mark.parametrize("changes, field", [
    ({"algorithm": "ppo"}, "preference.algorithm"),
    ({"beta": 0}, "preference.beta"),
    ({"algorithm": "simpo", "settings": {"gamma_beta_ratio": 2}}, "preference.settings.gamma_beta_ratio"),
    ({"algorithm": "simpo", "settings": {"cpo_alpha": -1}}, "preference.settings.cpo_alpha"),
    ({"algorithm": "orpo", "settings": {"gamma_beta_ratio": 0.5}}, "not a setting of 'orpo'"),
    ({"save_steps": 3, "eval_steps": 2}, "preference.save_steps"),
    ({"source_families": {"dpo_preference": ["dpo_preference"]}}, "no families listed"),
    ({"algorithm": "dpo", "settings": {"loss_type": "nope"}}, "preference.settings.loss_type"),
    ({"algorithm": "kto", "settings": {"desirable_weight": 0}}, "preference.settings.desirable_weight"),
    ({"algorithm": "kto", "per_device_batch_size": 1}, "KTO needs more than one example"),
    ({"rejected_source": "stage6_specialized"}, "preference.rejected_source"),
    ({"source_weights": {"dpo_preference": 0.5, "roleplay": 0.3}}, "must sum to 1"),
    ({"source_weights": {"dpo_preference": 0.5, "roleplay": 0.3, "crisis": 0.2}}, "unknown source"),
    ({"sampling": {"temperature": -1}}, "preference.sampling.temperature"),
    ({"sampling": {"num_samples": 0}}, "preference.sampling.num_samples"),
    ({"sampling": {"tempreature": 1}}, "unknown setting"),
])
def test_invalid_settings_are_clear_errors(changes, field):
    with pytest.raises(PreferenceConfigError, match=field.replace(".", r"\.")):
        PreferenceConfig.from_stage({"algorithm": "orpo", **changes})


# --- training on the tiny model -----------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from pixel_assets.lib.training.align import load_policy
    from pixel_assets.lib.training.models import load_tokenizer

    tmp = tmp_path_factory.mktemp("pref")
    base = build_base(tmp / "base")
    stage7 = build_adapter(base, tmp / "stage7")
    tokenizer = load_tokenizer(base)
    policy = load_policy(base, stage7, None, trainable=False)
    cfg = PreferenceConfig(**FAST)
    data = build_preference_data(cfg, _records(8, 6, 4) + records("dpo_preference", "val", 2),
                                 checkpoint_sampler(policy, tokenizer, cfg.sampling),
                                 val_records=records("dpo_preference", "val", 2))
    root = LocalDataRoot(tmp / "root")
    write_preference_data(root, data)
    return {"base": base, "stage7": stage7, "tokenizer": tokenizer, "data": tmp / "root" / DATA_PREFIX, "tmp": tmp,
            "pairs": data}


def test_stage7_sampler_is_seeded(tiny):
    from pixel_assets.lib.training.align import load_policy

    policy = load_policy(tiny["base"], tiny["stage7"], None, trainable=False)
    prompts = [p["prompt"] for p in tiny["pairs"].train[:3]]
    sampling = SamplingConfig(max_new_tokens=8, num_samples=2, seed=3)
    first = checkpoint_sampler(policy, tiny["tokenizer"], sampling)(prompts)
    assert first == checkpoint_sampler(policy, tiny["tokenizer"], sampling)(list(reversed(prompts)))[::-1]
    assert all(len(answers) == 2 for answers in first)
    other = checkpoint_sampler(policy, tiny["tokenizer"], SamplingConfig(max_new_tokens=8, num_samples=2, seed=4))
    assert other(prompts) != first
    sampled = [p for p in tiny["pairs"].train if p["metadata"]["rejected_from"] == "stage7_roleplay"]
    assert sampled, "the tiny stage-7 model produced no usable rejected response"


@pytest.mark.parametrize("algorithm", ["orpo", "simpo", "dpo", "kto"])
def test_each_algorithm_trains_from_the_stage7_adapter_with_the_curriculum_settings(tiny, algorithm):
    from pixel_assets.lib.training.align import train_preference
    from pixel_assets.lib.training.curriculum import load_curriculum
    from pixel_assets.lib.training.store import checkpoint_metadata

    stage = load_curriculum(profile="demo").stage("preference")  # the curriculum file, demo profile
    config = PreferenceConfig.from_stage(stage, algorithm=algorithm, settings={}, max_steps=1, eval_steps=1,
                                         save_steps=1)
    assert config.beta == stage.beta and config.learning_rate == stage.learning_rate
    out = tiny["tmp"] / f"final_{algorithm}"
    result = train_preference(base=tiny["base"], stage7_adapter=tiny["stage7"], tokenizer=tiny["tokenizer"],
                              data_path=tiny["data"], out_dir=out, config=config, log=lambda _m: None)
    assert result.steps == 1 and result.algorithm == algorithm and result.train_loss is not None
    assert result.eval_loss is not None and result.perplexity > 1 and result.tokens_seen > 0
    assert (out / "adapter_model.safetensors").is_file() and (out / "adapter_config.json").is_file()
    assert not (out / "ref").exists() and (out / "_progress" / "trained.json").is_file()  # only the trained adapter; progress kept until published
    assert "rewards/margins" in result.preference and "eval_rewards/margins" in result.preference
    if algorithm != "kto":  # KTO's rewards are unpaired: no accuracy
        assert "rewards/accuracies" in result.preference
    meta = checkpoint_metadata(result)
    assert meta["algorithm"] == algorithm and meta["preference"] == result.preference


@pytest.mark.parametrize("algorithm", ["dpo", "kto"])
def test_reference_model_is_the_stage7_policy(tiny, algorithm):
    import torch

    from pixel_assets.lib.training.align import build_trainer, load_policy
    from pixel_assets.lib.training.models import load_base_model

    config = PreferenceConfig(algorithm=algorithm, **{**FAST, "max_steps": 2})
    trainer = build_trainer(base=tiny["base"], stage7_adapter=tiny["stage7"], tokenizer=tiny["tokenizer"],
                            data_dir=tiny["data"], out_dir=tiny["tmp"] / f"ref_{algorithm}", config=config)
    batch = next(iter(trainer.get_train_dataloader()))

    def completion_logps(model):
        with torch.no_grad():
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.float()
        logps = torch.log_softmax(logits[:, :-1], -1).gather(-1, batch["input_ids"][:, 1:, None])[..., 0]
        return (logps * batch["completion_mask"][:, 1:]).sum(-1)

    def reference():
        out = trainer.compute_ref_log_probs(trainer.model, batch)
        return torch.cat(out) if algorithm == "dpo" else out[0]

    stage7 = completion_logps(load_policy(tiny["base"], tiny["stage7"], None, trainable=False).eval())
    base = completion_logps(load_base_model(tiny["base"]).eval())
    assert not torch.allclose(stage7, base, atol=1e-3)  # the adapter matters: the check can fail
    torch.testing.assert_close(reference(), stage7, atol=1e-4, rtol=1e-5)
    trainer.train()  # the policy moves, the reference stays the stage-7 checkpoint
    torch.testing.assert_close(reference(), stage7, atol=1e-4, rtol=1e-5)
    assert not torch.allclose(completion_logps(trainer.model.eval()), stage7, atol=1e-6)


def test_resume_continues_from_the_last_intermediate_checkpoint(tiny):
    from transformers import TrainerCallback

    from pixel_assets.lib.training.align import train_preference

    class Interrupt(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            if state.global_step == 2:
                raise KeyboardInterrupt("planted interruption after the step-2 checkpoint")

    out = tiny["tmp"] / "resume"
    config = PreferenceConfig(**{**FAST, "max_steps": 3})
    kw = dict(base=tiny["base"], stage7_adapter=tiny["stage7"], tokenizer=tiny["tokenizer"], data_path=tiny["data"],
              out_dir=out, config=config, log=lambda _m: None)
    with pytest.raises(KeyboardInterrupt):
        train_preference(**kw, callbacks=[Interrupt()])
    assert not (out / "adapter_model.safetensors").exists()
    resumed = train_preference(**kw)
    assert resumed.resumed_from_step == 2 and resumed.steps == 3
