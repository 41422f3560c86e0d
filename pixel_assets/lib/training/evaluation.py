"""Held-out evaluation: assistant-token loss and perplexity per family, per checkpoint.

The loss is the mean negative log-likelihood of the assistant tokens (the chat template's
`{% generation %}` spans), token-weighted over a family's records: the quantity the SFT stages
optimise, so numbers are comparable across checkpoints. The test split is reported in three
sections: `holdout` (records held out on purpose: the test-only family edge_case_crisis and the
test-only slices of voice_persona, long_running_therapy, sarcasm; metadata.holdout "family" |
"slice"), `group_holdout` (ordinary records in test only because their group holds a held-out
record; metadata.holdout "group") and `test` (ordinary test records, holdout "none").
`final_evaluation.json` holds one table: rows = section/family, columns = checkpoints.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

EVALUATION_KEY = "training/evaluation/final_evaluation.json"
HARD_HOLDOUT_MARKERS = ("family", "slice")  # splits.py metadata.holdout values of held-out records
GROUP_HOLDOUT_MARKER = "group"  # in test with its group, not by the split ratios
SECTIONS = ("holdout", "group_holdout", "test")


def encode_for_scoring(tokenizer, record: dict[str, Any], max_length: int | None) -> tuple[list[int], list[int], bool]:
    """Token ids and loss mask: assistant tokens of a conversation, every token of a phase-A text."""
    if "messages" in record:
        enc = tokenizer.apply_chat_template(record["messages"], tokenize=True, return_dict=True,
                                            return_assistant_tokens_mask=True)
        ids, mask = list(enc["input_ids"]), list(enc["assistant_masks"])
    else:
        ids = list(tokenizer(record["text"], add_special_tokens=False)["input_ids"]) + [tokenizer.eos_token_id]
        mask = [1] * len(ids)
    cut = max_length is not None and len(ids) > max_length
    if cut:
        ids, mask = ids[:max_length], mask[:max_length]
    return ids, mask, cut


DEFAULT_TOKEN_BUDGET = 16_384  # padded tokens per scoring batch (the backbone's activations scale with it)


def fused_scoring_model(model):
    """The model with TRL's fused LM head on its causal LM (added once; SFTTrainer adds the same one).

    ``model(..., labels=..., fused_lm_head=True)`` then returns per-token log-probabilities computed in
    tiles of the LM head (never the (batch, seq, vocab) logits); the plain forward, and so ``generate``,
    is unchanged. On a PeftModel the head goes on the wrapped causal LM: PEFT's forward calls it."""
    from trl.trainer.utils import add_fused_lm_head

    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    if not getattr(inner, "_pixel_fused_lm_head", False):
        add_fused_lm_head(inner, outputs=("log_probs",))
        inner._pixel_fused_lm_head = True
    return model


def token_budget_batches(lengths: Sequence[int], token_budget: int) -> list[list[int]]:
    """Indices grouped into batches of length-sorted records whose padded size (rows x longest)
    stays within ``token_budget`` (a record longer than the budget is a batch of its own)."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        if current and (len(current) + 1) * lengths[i] > token_budget:
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


def evaluate_records(model, tokenizer, records: Iterable[dict[str, Any]], *, max_length: int | None = None,
                     token_budget: int = DEFAULT_TOKEN_BUDGET) -> dict[str, Any]:
    """{loss, perplexity, records, tokens, truncated} over the records' assistant tokens.

    Records are compiled conversations ({"messages"}) or phase-A text blocks ({"text"}: every token
    counts). A record longer than `max_length` is cut to its head and counted in `truncated`.
    Scored through the fused LM head in length-sorted batches of at most `token_budget` padded tokens."""
    import torch

    encoded = [encode_for_scoring(tokenizer, r, max_length) for r in records]
    truncated = sum(1 for e in encoded if e[2])
    without_loss = sum(1 for e in encoded if not any(e[1]))  # e.g. cut before the first assistant token
    encoded = [e for e in encoded if any(e[1])]
    total_nll, total_tokens = 0.0, 0
    was_training = model.training
    model.eval()
    fused_scoring_model(model)
    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    try:
        for rows in token_budget_batches([len(e[0]) for e in encoded], token_budget):
            batch = [encoded[i] for i in rows]
            width = max(len(ids) for ids, _m, _c in batch)
            input_ids = torch.full((len(batch), width), pad, dtype=torch.long)
            attention = torch.zeros((len(batch), width), dtype=torch.long)
            labels = torch.full((len(batch), width), -100, dtype=torch.long)
            for row, (ids, mask, _cut) in enumerate(batch):
                t = torch.tensor(ids, dtype=torch.long)
                input_ids[row, : len(ids)] = t
                attention[row, : len(ids)] = 1
                labels[row, : len(ids)] = torch.where(torch.tensor(mask, dtype=torch.bool), t, torch.tensor(-100))
            with torch.no_grad():
                out = model(input_ids=input_ids.to(device), attention_mask=attention.to(device),
                            labels=labels.to(device), fused_lm_head=True)
            total_nll -= float(out.log_probs.double().sum())
            total_tokens += int((labels[:, 1:] != -100).sum())
    finally:
        model.train(was_training)
    loss = total_nll / total_tokens if total_tokens else None
    return {"loss": loss, "perplexity": math.exp(min(loss, 50.0)) if loss is not None else None,
            "records": len(encoded), "tokens": total_tokens, "truncated": truncated, "without_loss_tokens": without_loss}


def evaluate_checkpoint(model, tokenizer, records_by_family: Mapping[str, Sequence[dict]], *,
                        max_length: int | None = None) -> dict[str, dict[str, Any]]:
    """{family: {loss, perplexity, records, tokens, truncated}}."""
    return {fam: evaluate_records(model, tokenizer, recs, max_length=max_length)
            for fam, recs in sorted(records_by_family.items()) if recs}


def split_test_records(records: Iterable[dict[str, Any]]) -> dict[str, dict[str, list[dict]]]:
    """Test-split records as {section: {family: [...]}} (SECTIONS); other splits ignored."""
    out: dict[str, dict[str, list[dict]]] = {s: {} for s in SECTIONS}
    for r in records:
        meta = r.get("metadata") or {}
        if meta.get("split") != "test":
            continue
        holdout = meta.get("holdout")
        section = ("holdout" if holdout in HARD_HOLDOUT_MARKERS else
                   "group_holdout" if holdout == GROUP_HOLDOUT_MARKER else "test")
        out[section].setdefault(meta.get("source_family", "unknown"), []).append(r)
    return out


def evaluate_sections(model, tokenizer, sections: Mapping[str, Mapping[str, Sequence[dict]]], *,
                      max_length: int | None = None) -> dict[str, dict[str, dict[str, Any]]]:
    return {section: evaluate_checkpoint(model, tokenizer, fams, max_length=max_length)
            for section, fams in sections.items()}


def evaluate_adapters(base, checkpoints: Mapping[str, Any], tokenizer, sections, *, plan=None,
                      max_length: int | None = None) -> dict[str, dict]:
    """Evaluate several checkpoints of one base, loading the base once: {name: sections figures}.

    `checkpoints` maps a column name to an adapter directory, or to None for the base model itself.
    """
    from peft import PeftModel

    from pixel_assets.lib.training.models import load_base_model

    model = load_base_model(base, plan)
    out = {}
    for name, adapter in checkpoints.items():
        if adapter is None:
            out[name] = evaluate_sections(model, tokenizer, sections, max_length=max_length)
            continue
        peft_model = PeftModel.from_pretrained(model, str(adapter))
        out[name] = evaluate_sections(peft_model, tokenizer, sections, max_length=max_length)
        model = peft_model.unload()  # back to the plain base for the next adapter
    return out


def evaluation_table(results: Mapping[str, Mapping[str, Mapping[str, Mapping[str, Any]]]]) -> dict[str, Any]:
    """{checkpoint: {section: {family: figures}}} -> the table: rows section/family, columns checkpoints."""
    checkpoints = list(results)
    rows: dict[str, dict[str, dict[str, Any]]] = {s: {} for s in SECTIONS}
    for ckpt, sections in results.items():
        for section, fams in sections.items():
            for fam, fig in fams.items():
                rows.setdefault(section, {}).setdefault(fam, {})[ckpt] = {
                    "loss": fig.get("loss"), "perplexity": fig.get("perplexity"), "records": fig.get("records")}
    return {"checkpoints": checkpoints,
            "sections": {s: dict(sorted(fams.items())) for s, fams in rows.items()}}


def table_markdown(table: Mapping[str, Any], value: str = "loss") -> str:
    cols = table["checkpoints"]
    lines = [f"| section | family | {' | '.join(cols)} |", "|---|---|" + "---|" * len(cols)]
    for section, fams in table["sections"].items():
        for fam, cells in fams.items():
            vals = [cells.get(c, {}).get(value) for c in cols]
            lines.append(f"| {section} | {fam} | " + " | ".join("" if v is None else f"{v:.4f}" for v in vals) + " |")
    return "\n".join(lines)


def table_metadata(table: Mapping[str, Any]) -> dict[str, float]:
    """Flat numeric figures ("holdout/edge_case_crisis/final_model/loss") the UI plots across runs."""
    out = {}
    for section, fams in table["sections"].items():
        for fam, cells in fams.items():
            for ckpt, fig in cells.items():
                for k in ("loss", "perplexity"):
                    if fig.get(k) is not None:
                        out[f"{section}/{fam}/{ckpt}/{k}"] = float(fig[k])
    return out


def write_evaluation(root, table: Mapping[str, Any], key: str = EVALUATION_KEY, **extra: Any) -> str:
    """Write the table (plus extra top-level fields) as JSON under the data root; returns the key."""
    root.write_text(key, json.dumps({**extra, **table}, indent=2, sort_keys=True))
    return key
