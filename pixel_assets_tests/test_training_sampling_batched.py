"""Batched sampling of rejected responses: length-sorted left-padded batches of `batch_size`, answers
in the prompts' order, greedy text independent of the batch size."""

from __future__ import annotations

import pytest

from pixel_assets.lib.training.sampling import SamplingConfig, SamplingConfigError, generate_replies, prompt_batches
from pixel_assets_tests.sft_fixtures import conversations, tiny_base


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from pixel_assets.lib.training.models import load_base_model, load_tokenizer

    base = tiny_base(tmp_path_factory.mktemp("sampling") / "base")
    return load_base_model(base), load_tokenizer(base)


def test_greedy_text_is_the_same_whatever_the_batch_size(tiny, monkeypatch):
    model, tok = tiny
    prompts = [c["messages"][:-1] for c in conversations(10)]
    calls = []
    real = model.generate
    monkeypatch.setattr(model, "generate", lambda **kw: calls.append(kw["input_ids"].shape) or real(**kw))
    by_size = {bs: generate_replies(model, tok, prompts, SamplingConfig(temperature=0, max_new_tokens=16,
                                                                        batch_size=bs)) for bs in (1, 3, 16)}
    assert by_size[1] == by_size[3] == by_size[16]
    assert len({r[0] for r in by_size[1]}) > 1  # not one text for every prompt
    assert [s[0] for s in calls] == [1] * 10 + [3, 3, 3, 1] + [10]  # batched, not one prompt at a time
    assert any(s[1] > min(c[1] for c in calls) for s in calls[10:])  # padded to the batch's longest


def test_sampled_answers_are_reproducible_and_in_prompt_order(tiny):
    model, tok = tiny
    prompts = [c["messages"][:-1] for c in conversations(5)]
    cfg = SamplingConfig(temperature=0.9, max_new_tokens=12, num_samples=2, batch_size=4, seed=3)
    first, again = generate_replies(model, tok, prompts, cfg), generate_replies(model, tok, prompts, cfg)
    assert first == again and all(len(r) == 2 for r in first)
    single = generate_replies(model, tok, [prompts[2]], SamplingConfig(temperature=0, max_new_tokens=12))
    greedy = generate_replies(model, tok, prompts, SamplingConfig(temperature=0, max_new_tokens=12, batch_size=4))
    assert greedy[2] == single[0]  # the third prompt's answer is in the third place


def test_batches_are_length_sorted_and_batch_size_is_validated():
    assert prompt_batches([5, 1, 9, 3, 7], 2) == [[1, 3], [0, 4], [2]]
    with pytest.raises(SamplingConfigError, match="sampling.batch_size"):
        SamplingConfig.from_dict({"batch_size": 0})
