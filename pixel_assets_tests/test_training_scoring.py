"""Memory-safe scoring: evaluate_records goes through TRL's fused LM head in token-budget batches and
gives the loss the full-logits computation gave; at the production vocabulary it fits under an
address-space cap the full logits cannot."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from pixel_assets.lib.training.evaluation import evaluate_records, token_budget_batches
from pixel_assets_tests.sft_fixtures import conversations, texts, tiny_base

ROOT = Path(__file__).resolve().parents[1]


def _full_logits_loss(model, tokenizer, records, max_length=None) -> float:
    """The computation evaluate_records did before: full logits, fp32, one cross-entropy per batch of 8."""
    import torch

    from pixel_assets.lib.training.evaluation import encode_for_scoring  # same encoding: only the scoring differs

    enc = [e for e in (encode_for_scoring(tokenizer, r, max_length) for r in records) if any(e[1])]
    nll, count = 0.0, 0
    for i in range(0, len(enc), 8):
        batch = enc[i:i + 8]
        width = max(len(ids) for ids, _m, _c in batch)
        ids_t = torch.full((len(batch), width), tokenizer.pad_token_id, dtype=torch.long)
        attn = torch.zeros_like(ids_t)
        labels = torch.full_like(ids_t, -100)
        for row, (ids, mask, _c) in enumerate(batch):
            ids_t[row, :len(ids)] = torch.tensor(ids)
            attn[row, :len(ids)] = 1
            labels[row, :len(ids)] = torch.where(torch.tensor(mask, dtype=torch.bool), torch.tensor(ids), -100)
        with torch.no_grad():
            logits = model(input_ids=ids_t, attention_mask=attn).logits.float()
        nll += float(torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.size(-1)),
                                                       labels[:, 1:].reshape(-1), ignore_index=-100, reduction="sum"))
        count += int((labels[:, 1:] != -100).sum())
    return nll / count


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from pixel_assets.lib.training.models import load_base_model, load_tokenizer

    base = tiny_base(tmp_path_factory.mktemp("scoring") / "base")
    return load_base_model(base), load_tokenizer(base), base


@pytest.mark.parametrize("budget", [64, 512, 100_000])
def test_fused_scoring_equals_the_full_logits_loss(tiny, budget):
    model, tok, _ = tiny
    records = conversations(10) + texts(4)
    expected = _full_logits_loss(model, tok, records)
    got = evaluate_records(model, tok, records, token_budget=budget)
    assert abs(got["loss"] - expected) < 1e-5, (got["loss"], expected)
    assert got["records"] == 14


def test_fused_scoring_on_a_peft_model_scores_the_adapter(tiny):
    from peft import get_peft_model

    from pixel_assets.lib.training.models import load_base_model, lora_config

    _, tok, base = tiny
    peft = get_peft_model(load_base_model(base), lora_config(r=4))
    for name, p in peft.named_parameters():
        if "lora_B" in name:
            p.data.normal_(0, 0.5)  # a non-zero adapter: the loss must differ from the base's
    peft.eval()  # no LoRA dropout in the reference either
    records = conversations(6)
    expected = _full_logits_loss(peft, tok, records)
    assert abs(evaluate_records(peft, tok, records)["loss"] - expected) < 1e-5
    assert abs(evaluate_records(tiny[0], tok, records)["loss"] - expected) > 1e-3


def test_batches_respect_the_token_budget_and_sort_by_length():
    lengths = [50, 10, 300, 20, 40, 45]
    batches = token_budget_batches(lengths, 100)
    assert sorted(i for b in batches for i in b) == list(range(6))
    for b in batches:
        assert len(b) == 1 or len(b) * max(lengths[i] for i in b) <= 100
    assert [lengths[b[0]] for b in batches] == sorted(lengths[b[0]] for b in batches)
    assert batches[-1] == [2]  # longer than the budget: alone


def _probe(mode: str, headroom_gb: float) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(ROOT / "pixel_assets_tests" / "scoring_memory_probe.py"), mode,
                           str(headroom_gb)], capture_output=True, text=True, env=env, timeout=600,
                          preexec_fn=lambda: signal.signal(signal.SIGTERM, signal.SIG_DFL), start_new_session=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_production_vocabulary_scoring_fits_where_the_full_logits_do_not():
    headroom = 5.0  # GB above the process before scoring; fp32 logits alone are 4 GiB, their softmax 4 more
    naive = _probe("naive", headroom)
    fused = _probe("fused", headroom)
    print(f"\ncap {fused['cap_gb']} GiB (+{headroom} GB), fp32 logits {fused['logits_fp32_gb']} GiB; "
          f"full logits: ok={naive['ok']} ({naive.get('error', '')}); fused: ok={fused['ok']}, "
          f"peak RSS gain {fused['peak_rss_gain_gb']} GiB = {fused['peak_rss_gain_gb'] / fused['logits_fp32_gb']:.2f}x "
          f"the logits")
    assert not naive["ok"], naive
    assert fused["ok"], fused
