"""Run in a subprocess by test_training_scoring: score 4 x 2,048 tokens on a Mistral-architecture model
with the production vocabulary (131,072) and a narrow body, under an address-space cap a few GB above
what the process holds before scoring. ``naive`` takes the full logits (what evaluate_records did
before the fused head); ``fused`` is evaluate_records. Prints one JSON line."""

from __future__ import annotations

import json
import resource
import sys

from pixel_assets.lib.process_memory import current_rss_bytes, peak_rss_bytes, reset_peak_rss, virtual_size_bytes

VOCAB, SEQ, ROWS = 131_072, 2_048, 4


def naive_loss(model, input_ids, labels) -> float:
    import torch

    logits = model(input_ids=input_ids).logits.float()  # (batch, seq, vocab)
    return float(torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.size(-1)),
                                                   labels[:, 1:].reshape(-1), ignore_index=-100))


def main(mode: str, headroom_gb: float) -> None:
    import torch
    from transformers import MistralConfig, MistralForCausalLM

    from pixel_assets.lib.training.evaluation import evaluate_records

    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = MistralForCausalLM(MistralConfig(
        vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=1, num_attention_heads=4,
        num_key_value_heads=2, head_dim=16, max_position_embeddings=SEQ, tie_word_embeddings=False,
        attn_implementation="sdpa"))
    model.eval()

    class Tok:  # whole-text records through a stand-in tokenizer: every token has a loss
        pad_token_id = 0
        eos_token_id = 1

        def __call__(self, text, add_special_tokens=False):
            return {"input_ids": [int(t) for t in text.split()]}

    gen = torch.Generator().manual_seed(1)
    rows = torch.randint(2, VOCAB, (ROWS, SEQ - 1), generator=gen)
    records = [{"text": " ".join(map(str, r.tolist()))} for r in rows]
    before = virtual_size_bytes()
    rss_before = current_rss_bytes()
    reset_peak_rss()
    cap = before + int(headroom_gb * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    result = {"mode": mode, "vm_before_gb": round(before / 2**30, 2), "cap_gb": round(cap / 2**30, 2),
              "logits_fp32_gb": round(ROWS * SEQ * VOCAB * 4 / 2**30, 2)}
    try:
        with torch.no_grad():
            if mode == "naive":
                ids = torch.cat([rows, torch.ones(ROWS, 1, dtype=torch.long)], dim=1)
                result["loss"] = naive_loss(model, ids, ids.clone())
            else:
                result["loss"] = evaluate_records(model, Tok(), records, token_budget=ROWS * SEQ)["loss"]
        result["ok"] = True
    except (MemoryError, RuntimeError) as exc:
        result["ok"] = False
        result["error"] = type(exc).__name__ + ": " + str(exc).splitlines()[0][:120]
    result["peak_rss_gain_gb"] = round((peak_rss_bytes() - rss_before) / 2**30, 2)
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]))
