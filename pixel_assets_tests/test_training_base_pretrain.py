"""The embedded tiny base is pre-trained with all its parameters (lib/training/base_pretrain.py):
every weight moves, the loss on the text falls well below the untrained model's, the initial
weights are kept for the "untrained" column, and the run is seeded."""

import pytest

from pixel_assets.lib.training.base_pretrain import UNTRAINED_DIR, BasePretrainConfig, pretrain_base, pretrain_texts
from pixel_assets_tests.sft_fixtures import conversations, tiny_base

CONFIG = BasePretrainConfig(max_steps=30, batch_size=4, max_length=64, learning_rate=5e-3)


def weights(path):
    from safetensors.torch import load_file

    return load_file(str(path / "model.safetensors"))


def text_loss(model_dir, tokenizer, texts) -> float:
    import torch

    from pixel_assets.lib.training.models import load_base_model

    model = load_base_model(model_dir).eval()
    batch = tokenizer(texts, return_tensors="pt", padding=True)
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    with torch.no_grad():
        return float(model(**batch, labels=labels).loss)


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    from pixel_assets.lib.training.models import device_plan, load_tokenizer

    base = tiny_base(tmp_path_factory.mktemp("base") / "base")
    tokenizer = load_tokenizer(base)
    texts = pretrain_texts(conversations(60, seed=3), tokenizer)
    result = pretrain_base(base, texts, CONFIG, plan=device_plan(force_cpu=True), log=lambda m: None)
    return {"base": base, "tokenizer": tokenizer, "texts": texts, "result": result}


def test_every_parameter_trains_and_the_loss_falls_below_the_untrained_models(pretrained):
    base, tokenizer, texts = pretrained["base"], pretrained["tokenizer"], pretrained["texts"]
    before, after = weights(base / UNTRAINED_DIR), weights(base)
    assert set(before) == set(after)
    unchanged = [name for name in before if (before[name] == after[name]).all()]
    assert unchanged == []  # all parameters, not adapters
    untrained, trained = text_loss(base / UNTRAINED_DIR, tokenizer, texts[:8]), text_loss(base, tokenizer, texts[:8])
    assert trained < 0.6 * untrained, (untrained, trained)
    result = pretrained["result"]
    assert result.steps == CONFIG.max_steps and result.last_loss < result.first_loss
    assert result.as_metadata()["pretrain_steps"] == CONFIG.max_steps


def test_seeded_and_zero_steps_keeps_the_initialisation(pretrained, tmp_path):
    from pixel_assets.lib.training.models import device_plan

    again = tiny_base(tmp_path / "again")
    result = pretrain_base(again, pretrained["texts"], CONFIG, plan=device_plan(force_cpu=True), log=lambda m: None)
    assert result.last_loss == pretrained["result"].last_loss
    assert all((weights(again)[k] == weights(pretrained["base"])[k]).all() for k in weights(again))
    fresh = tiny_base(tmp_path / "fresh")
    initial = weights(fresh)
    assert pretrain_base(fresh, pretrained["texts"], BasePretrainConfig(max_steps=0), log=lambda m: None).steps == 0
    assert all((weights(fresh)[k] == initial[k]).all() for k in initial)


def test_config_rejects_unknown_keys_and_bad_values():
    with pytest.raises(ValueError, match="unknown keys"):
        BasePretrainConfig.from_mapping({"max_stepz": 3})
    with pytest.raises(ValueError, match="learning_rate"):
        BasePretrainConfig(learning_rate=0)
