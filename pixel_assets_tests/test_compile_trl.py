"""Shards load as they are with datasets' JSON loader and feed TRL's SFTTrainer (one CPU step)."""

from __future__ import annotations

import json

import pytest

from pixel_assets.lib.compiled import build_compiled_dataset, publish_compiled_dataset
from pixel_assets.lib.compiled.synthetic import exact_dedup, synthetic_records_frame
from pixel_assets.lib.registry import load_registry
from pixel_assets.lib.splits import assign_splits
from pixel_assets.lib.storage import LocalDataRoot

CHATML_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _tiny_tokenizer(texts: list[str]):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=special,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>", bos_token=None,
        chat_template=CHATML_TEMPLATE,
    )


@pytest.fixture
def published_shards(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    registry = load_registry()
    # Every family of the registry, transcripts and preference pairs (metadata.rejected_response
    # present in some records only) included.
    frame = assign_splits(exact_dedup(synthetic_records_frame(400, registry, seed=3)), registry)
    compiled = build_compiled_dataset(frame, registry, shard_max_bytes=60_000)
    root = LocalDataRoot(tmp_path / "data")
    publish_compiled_dataset(compiled, root)
    train = [str(root.local_path(f"final_dataset/{s.key}")) for s in compiled.shards_of("train")]
    return train, compiled


def test_shards_load_with_datasets_and_train_one_sft_step(published_shards, tmp_path):
    import datasets
    import torch
    from transformers import MistralConfig, MistralForCausalLM
    from trl import SFTConfig, SFTTrainer

    train_files, compiled = published_shards
    assert len(train_files) > 1
    ds = datasets.load_dataset("json", data_files=train_files, split="train",
                               cache_dir=str(tmp_path / "cache"))
    assert ds.num_rows == compiled.manifest["splits"]["train"]["conversations"]
    assert set(ds.column_names) == {"messages", "metadata"}
    assert set(ds[0]["messages"][0]) == {"role", "content"}
    assert {r["split"] for r in ds["metadata"]} == {"train"}
    families = {r["source_family"] for r in ds["metadata"]}
    assert {"video_transcripts", "dpo_preference"} <= families

    texts = [m["content"] for row in ds.select(range(min(200, ds.num_rows)))["messages"] for m in row]
    tokenizer = _tiny_tokenizer(texts)
    torch.manual_seed(0)
    model = MistralForCausalLM(MistralConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        intermediate_size=64, vocab_size=len(tokenizer), max_position_embeddings=1024,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
    ))
    config = SFTConfig(
        output_dir=str(tmp_path / "out"), max_steps=1, use_cpu=True, bf16=False, report_to=[],
        per_device_train_batch_size=2, max_length=512, logging_steps=1, save_strategy="no",
    )
    # The messages column goes in as loaded: no conversion.
    trainer = SFTTrainer(model=model, args=config, train_dataset=ds.select(range(8)), processing_class=tokenizer)
    result = trainer.train()
    assert result.global_step == 1
    loss = trainer.state.log_history[0]["loss"]
    assert loss == loss and loss > 0  # a finite, positive loss: real tokens were trained on
    # The chat template renders the shard's roles (system/user/assistant) as ChatML.
    rendered = tokenizer.apply_chat_template(ds[0]["messages"], tokenize=False)
    assert rendered.count("<|im_start|>") == len(ds[0]["messages"])
    json.dumps(compiled.manifest["splits"])  # manifest stays JSON-serializable
