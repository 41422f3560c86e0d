"""Models and tokenizers, offline: the embedded tiny base, the training chat template, the
device plan, and the LoRA settings every stage shares.

The production base (a Hugging Face id such as ``LatitudeGames/Wayfarer-2-12B``) is configuration
only; nothing here downloads. With no base configured, the embedded default is a tiny
Mistral-architecture model and a byte-level BPE tokenizer trained on the compiled train split, so
the whole chain runs on a CPU in seconds and is reproducible from the data alone.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

# ChatML markup. The assistant's content and its end marker sit inside {% generation %}, so
# `return_assistant_tokens_mask` (TRL's assistant_only_loss) puts the loss on exactly those tokens:
# system and user turns, and the role headers, get none.
IM_START, IM_END, PAD = "<|im_start|>", "<|im_end|>", "<|pad|>"
SPECIAL_TOKENS = [PAD, IM_START, IM_END]
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{%- if message['role'] == 'assistant' %}"
    "{{- '<|im_start|>assistant\\n' }}{% generation %}{{- message['content'] + '<|im_end|>' }}{% endgeneration %}{{- '\\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)

LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj"]
TINY_BASE_NAME = "pixel-tiny-mistral"


def build_tokenizer(texts: Iterable[str], vocab_size: int = 512):
    """A byte-level BPE tokenizer trained on ``texts`` (any text round-trips: bytes are the alphabet),
    with the ChatML special tokens and the training chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token=IM_END, pad_token=PAD, bos_token=None, unk_token=None,
        model_max_length=1_000_000,
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_tiny_model(tokenizer, *, max_position_embeddings: int = 8192, seed: int = 0, **overrides):
    """A randomly initialised (seeded) Mistral-architecture causal LM sized for CPU tests."""
    import torch
    from transformers import MistralConfig, MistralForCausalLM

    settings = dict(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=16,
        max_position_embeddings=max_position_embeddings, sliding_window=None,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, bos_token_id=None,
        tie_word_embeddings=False,
    )
    settings.update(overrides)
    torch.manual_seed(seed)
    model = MistralForCausalLM(MistralConfig(**settings))
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model


def build_tiny_base(texts: Iterable[str], out_dir: str | Path, *, vocab_size: int = 512,
                    max_position_embeddings: int = 8192, seed: int = 0) -> Path:
    """Tokenizer + tiny model trained/initialised from ``texts``, saved to ``out_dir`` (safetensors)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(texts, vocab_size=vocab_size)
    model = build_tiny_model(tokenizer, max_position_embeddings=max_position_embeddings, seed=seed)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    (out / "pixel_base.json").write_text(json.dumps({"name": TINY_BASE_NAME, "vocab_size": len(tokenizer),
                                                     "seed": seed}, sort_keys=True))
    return out


CHAT_MARKERS = (IM_START, IM_END)


def is_single_token(tokenizer, text: str) -> bool:
    tid = tokenizer.convert_tokens_to_ids(text)
    return (isinstance(tid, int) and tid != tokenizer.unk_token_id
            and list(tokenizer(text, add_special_tokens=False)["input_ids"]) == [tid])


def load_tokenizer(path_or_id: str | Path):
    """The model's tokenizer, offline; the training template replaces the model's own (one training
    template per model, with generation markers) when the model has none with them.

    The ChatML markers must be single tokens: a base whose tokenizer lacks them (a Mistral tokenizer
    with an ``[INST]`` template) gets them as added special tokens (``load_base_model`` gives the
    model the rows, ``added_chat_marker_ids`` names them for training); a base that has them keeps its own."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(path_or_id), local_files_only=_is_local(path_or_id))
    if not tokenizer.chat_template or "{% generation %}" not in str(tokenizer.chat_template):
        missing = [m for m in CHAT_MARKERS if not is_single_token(tokenizer, m)]
        if missing:
            tokenizer.add_special_tokens({"extra_special_tokens": missing},
                                         replace_extra_special_tokens=False)
        tokenizer.chat_template = CHAT_TEMPLATE
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def added_chat_marker_ids(path_or_id: str | Path) -> list[int]:
    """Ids of the ChatML markers ``load_tokenizer`` adds to this base's tokenizer (empty when the base
    has them as single tokens, or trains with its own generation template): the embedding rows a
    fresh adapter trains (peft ``trainable_token_indices``)."""
    from transformers import AutoTokenizer

    own = AutoTokenizer.from_pretrained(str(path_or_id), local_files_only=_is_local(path_or_id))
    if own.chat_template and "{% generation %}" in str(own.chat_template):
        return []
    missing = [m for m in CHAT_MARKERS if not is_single_token(own, m)]
    return [int(i) for i in load_tokenizer(path_or_id).convert_tokens_to_ids(missing)] if missing else []


def fit_embeddings_to_markers(model, path_or_id: str | Path) -> list[int]:
    """Give the model rows for the markers ``load_tokenizer`` added (resized to the tokenizer when it
    has fewer), set deterministically so every load of the base is the same model: input rows the
    mean embedding (the adapter trains them), output rows the base's EOS row for the end marker (the
    model ends an answer where it ended one before) and the mean for the others. Returns the ids."""
    import torch

    ids = added_chat_marker_ids(path_or_id)
    if not ids:
        return []
    tokenizer = load_tokenizer(path_or_id)
    if model.get_input_embeddings().num_embeddings < len(tokenizer):
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    with torch.no_grad():
        emb = model.get_input_embeddings().weight
        emb[ids] = emb[: min(ids)].mean(0)
        head = model.get_output_embeddings()
        if head is not None and head.weight is not emb:
            head.weight[ids] = head.weight[: min(ids)].mean(0)
            end = tokenizer.convert_tokens_to_ids(IM_END)
            if end in ids and tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
                head.weight[end] = head.weight[tokenizer.eos_token_id]
    return ids


@dataclass(frozen=True)
class DevicePlan:
    """Where and in what precision to train: bf16 + a fused attention kernel on a GPU, fp32 on CPU."""

    device: str
    dtype_name: str
    bf16: bool
    attn_implementation: str
    use_cpu: bool

    @property
    def dtype(self):
        import torch

        return getattr(torch, self.dtype_name)

    def trainer_kwargs(self) -> dict:
        """The precision/device fields of a TRL config (TRL defaults to bf16, which fails on CPU)."""
        return {"bf16": self.bf16, "fp16": False, "use_cpu": self.use_cpu}


def device_plan(force_cpu: bool = False) -> DevicePlan:
    import torch

    if not force_cpu and torch.cuda.is_available():
        try:
            import flash_attn  # noqa: F401

            attn = "flash_attention_2"
        except ImportError:
            attn = "sdpa"
        bf16 = torch.cuda.is_bf16_supported()
        return DevicePlan("cuda", "bfloat16" if bf16 else "float32", bf16, attn, use_cpu=False)
    return DevicePlan("cpu", "float32", False, "sdpa", use_cpu=True)


def load_base_model(path_or_id: str | Path, plan: DevicePlan | None = None):
    """The base causal LM, offline, in the plan's precision and attention implementation, loaded
    straight onto the plan's device (no full-precision or host copy first)."""
    from transformers import AutoModelForCausalLM

    plan = plan or device_plan()
    model = AutoModelForCausalLM.from_pretrained(
        str(path_or_id), dtype=plan.dtype, attn_implementation=plan.attn_implementation,
        device_map=plan.device, local_files_only=_is_local(path_or_id),
    )
    fit_embeddings_to_markers(model, path_or_id)
    return model


def model_max_length(path_or_id: str | Path) -> int:
    """The longest context the model allows (its config's max_position_embeddings), offline."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(str(path_or_id), local_files_only=_is_local(path_or_id))
    return int(config.max_position_embeddings)


def lora_config(r: int = 16, alpha: int = 32, dropout: float = 0.1, trainable_token_indices: list[int] | None = None):
    """LoRA on the attention projections (SPEC §7): one adapter continued through the whole chain;
    ``trainable_token_indices``: input-embedding rows trained and saved with it (added chat markers)."""
    from peft import LoraConfig

    return LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=list(LORA_TARGETS),
                      bias="none", task_type="CAUSAL_LM", trainable_token_indices=trainable_token_indices or None)


def _is_local(path_or_id: str | Path) -> bool:
    return Path(str(path_or_id)).exists()
