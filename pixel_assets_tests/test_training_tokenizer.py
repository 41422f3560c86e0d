"""A base whose tokenizer is not ChatML (a Mistral-style byte-level BPE with an [INST] template and no
ChatML tokens) trains correctly: the markers become single special tokens, the model gets rows for
them, only those rows (and LoRA) are trained and saved with the adapter, the assistant mask covers
exactly the assistant tokens, sampling stops at the end marker, and the saved adapter reloads."""

from __future__ import annotations

import json

import pytest

from pixel_assets_tests.sft_fixtures import conversations, stage_files

INST_TEMPLATE = ("{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}[INST] {{ m['content'] }} [/INST]"
                 "{% elif m['role'] == 'assistant' %}{{ m['content'] }}{{ eos_token }}{% endif %}{% endfor %}")


def build_mistral_style_base(out):
    """A Mistral-like base built locally: byte-level BPE with <s>, </s>, [INST], [/INST], no ChatML."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from pixel_assets.lib.training.models import build_tiny_model

    texts = [m["content"] for c in conversations(40) for m in c["messages"]]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(texts, trainer=trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<unk>", "<s>", "</s>", "[INST]", "[/INST]"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                   model_max_length=100_000)
    fast.chat_template = INST_TEMPLATE
    model = build_tiny_model(fast, pad_token_id=None)
    out.mkdir(parents=True)
    model.save_pretrained(out)
    fast.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return build_mistral_style_base(tmp_path_factory.mktemp("mistral_style") / "base")


def test_chat_markers_become_single_tokens_and_the_mask_covers_exactly_the_assistant(base):
    from pixel_assets.lib.training.models import IM_END, IM_START, added_chat_marker_ids, load_tokenizer

    tok = load_tokenizer(base)
    ids = [tok.convert_tokens_to_ids(m) for m in (IM_START, IM_END)]
    for marker in (IM_START, IM_END):
        assert len(tok(marker, add_special_tokens=False)["input_ids"]) == 1, marker
    assert added_chat_marker_ids(base) == ids and min(ids) >= 400 - 5  # new ids past the base's vocabulary
    messages = [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "I feel low today."},
                {"role": "assistant", "content": "I hear you. What happened?"},
                {"role": "user", "content": "Work."}, {"role": "assistant", "content": "Tell me more."}]
    enc = tok.apply_chat_template(messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
    masked = [t for t, m in zip(enc["input_ids"], enc["assistant_masks"]) if m]
    assert tok.decode(masked) == f"I hear you. What happened?{IM_END}Tell me more.{IM_END}"
    assert enc["input_ids"].count(ids[0]) == 5 and enc["input_ids"].count(ids[1]) == 5


def test_a_base_with_chatml_markers_keeps_its_tokenizer(tmp_path):
    from pixel_assets.lib.training.models import added_chat_marker_ids, build_tiny_base, load_tokenizer

    tiny = build_tiny_base([m["content"] for c in conversations(20) for m in c["messages"]], tmp_path / "tiny")
    before = json.loads((tiny / "tokenizer.json").read_text())
    assert added_chat_marker_ids(tiny) == []
    assert len(load_tokenizer(tiny)) == len(before["model"]["vocab"])


def test_training_trains_only_the_new_rows_saves_them_and_the_adapter_reloads_and_stops(base, tmp_path):
    import torch
    from safetensors.torch import load_file

    from pixel_assets.defs.training.adapters import load_trained
    from pixel_assets.lib.training.models import IM_END, device_plan, load_base_model, load_tokenizer
    from pixel_assets.lib.training.sampling import SamplingConfig, generate_replies, stop_token_ids
    from pixel_assets.lib.training.sft import SFTStageConfig, train_sft_stage

    tok = load_tokenizer(base)
    assert load_base_model(base).get_input_embeddings().num_embeddings == len(tok)
    train, val = stage_files(tmp_path / "data", "sft", n_train=8, n_val=4)
    config = SFTStageConfig(stage="stage1_foundation", max_length=512, per_device_batch_size=4, max_steps=3,
                            eval_steps=3, learning_rate=5e-2, device=device_plan(force_cpu=True))
    train_sft_stage(base=base, parent_adapter=None, tokenizer=tok, train_path=train, val_path=val,
                    out_dir=tmp_path / "out", config=config, log=lambda m: None)
    saved = load_file(str(tmp_path / "out" / "adapter_model.safetensors"))
    token_rows = [v for k, v in saved.items() if "trainable_tokens" in k]
    assert token_rows and all(v.shape[0] == 2 for v in token_rows), list(saved)
    fresh = load_base_model(base).get_input_embeddings().weight[[len(tok) - 2, len(tok) - 1]]
    assert not torch.allclose(token_rows[0], fresh), "the new rows were not trained"
    whole = [k for k in saved if k.endswith(("embed_tokens.weight", "base_layer.weight", "lm_head.weight"))]
    assert not whole, f"whole embedding or LM head saved with the adapter: {whole}"

    model, reloaded = load_trained(str(base), tmp_path / "out", force_cpu=True)
    end = reloaded.convert_tokens_to_ids(IM_END)
    assert end in stop_token_ids(reloaded)
    # Planted: the end marker is forced as the third new token; decoding must stop right there.
    from transformers import LogitsProcessor, LogitsProcessorList

    class ForceEndAtThird(LogitsProcessor):
        def __call__(self, input_ids, scores):
            if input_ids.shape[1] - start == 2:
                scores[:] = -1e9
                scores[:, end] = 0.0
            return scores

    prompt = [{"role": "user", "content": "hello"}]
    enc = reloaded.apply_chat_template(prompt, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    start = enc["input_ids"].shape[1]
    out = model.generate(**enc, max_new_tokens=12, do_sample=False, eos_token_id=stop_token_ids(reloaded),
                         logits_processor=LogitsProcessorList([ForceEndAtThird()]), pad_token_id=reloaded.pad_token_id)
    assert out.shape[1] - start == 3 and int(out[0, -1]) == end
    replies = generate_replies(model, reloaded, [prompt], SamplingConfig(temperature=0, max_new_tokens=12))
    assert isinstance(replies[0][0], str)
