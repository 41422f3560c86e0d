"""The probe set a reviewer reads before approving the next stage.

Fixed prompts (pixel_assets/config/probes.yaml) answered by every checkpoint with seeded decoding.
Answers pass through the project's PII scrubber before they are shown: a model can echo or invent
an email, a phone number or a name. `probe_table` is the markdown a checkpoint's metadata shows:
prompt | this stage | previous stage.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from pixel_assets.lib import contract
from pixel_assets.lib.training.sampling import SamplingConfig, SamplingConfigError, generate_replies

DEFAULT_PROBES = "probes.yaml"  # in pixel_assets/config/
_ID_RE = re.compile(r"^[a-z0-9_]+$")
Scrub = Callable[[list[str]], list[str]]


class ProbeError(ValueError):
    """The probe file is invalid; the message names the probe and the field."""


@dataclass(frozen=True)
class Probe:
    id: str
    category: str
    messages: tuple[dict[str, str], ...]

    @property
    def prompt(self) -> str:
        return self.messages[-1]["content"]


@dataclass(frozen=True)
class ProbeSet:
    probes: tuple[Probe, ...]
    sampling: SamplingConfig


def load_probes(path: str | Path | None = None) -> ProbeSet:
    text = Path(path).read_text("utf-8") if path else \
        resources.files("pixel_assets.config").joinpath(DEFAULT_PROBES).read_text("utf-8")
    where = str(path or DEFAULT_PROBES)
    raw = yaml.safe_load(text) or {}
    if not isinstance(raw, dict) or not isinstance(raw.get("probes"), list) or not raw["probes"]:
        raise ProbeError(f"{where}: needs a non-empty list `probes`")
    try:
        sampling = SamplingConfig.from_dict({**(raw.get("sampling") or {}), "seed": raw.get("seed", 0),
                                             "num_samples": 1}, f"{where}: sampling")
    except (SamplingConfigError, TypeError) as exc:
        raise ProbeError(str(exc)) from exc
    probes, seen = [], set()
    for i, p in enumerate(raw["probes"]):
        pid = p.get("id") if isinstance(p, dict) else None
        name = f"{where}: probe {pid or i}"
        if not isinstance(pid, str) or not _ID_RE.match(pid) or pid in seen:
            raise ProbeError(f"{name}: id must be a unique [a-z0-9_] string")
        seen.add(pid)
        msgs = p.get("messages")
        if not isinstance(msgs, list) or not msgs or not all(
                isinstance(m, dict) and m.get("role") in ("system", "user", "assistant")
                and isinstance(m.get("content"), str) and m["content"].strip() for m in msgs):
            raise ProbeError(f"{name}: messages must be a list of {{role, content}} turns")
        if msgs[-1]["role"] != "user":
            raise ProbeError(f"{name}: the last message must be the user's")
        probes.append(Probe(pid, str(p.get("category", "general")),
                            tuple({"role": m["role"], "content": m["content"]} for m in msgs)))
    return ProbeSet(tuple(probes), sampling)


def scrub_texts(texts: Sequence[str], *, scrubber=None) -> list[str]:
    """Texts with PII replaced by typed placeholders (the pipeline's scrubber, pii.scrub_records).

    Spans the detector is unsure of (review band) are masked too: a probe answer is shown, not kept.
    """
    from pixel_assets.lib.pii import scrub_records

    recs = [{"messages": [{"role": "assistant", "content": t}],
             "metadata": {"content_hash": contract.content_hash([{"content": t}]), "probe_index": i}}
            for i, t in enumerate(texts)]
    clean, review, _stats = scrub_records(recs, family="probes", scrubber=scrubber)
    out = list(texts)
    for r in clean + review:
        text = r["messages"][0]["content"]
        spans = [s for s in r["metadata"].get("pii_review", []) if s.get("field") == "messages.0"]
        for s in sorted(spans, key=lambda s: s["start"], reverse=True):
            text = text[: s["start"]] + f"<{s['entity_type']}>" + text[s["end"] :]
        out[r["metadata"]["probe_index"]] = text
    return out


def answer_probes(model, tokenizer, probes: ProbeSet | Sequence[Probe], *, seed: int | None = None,
                  scrub: Scrub | None = None, generate: Callable | None = None) -> list[dict[str, Any]]:
    """[{id, category, prompt, answer}] with scrubbed answers; `generate(model, tokenizer, prompts,
    sampling) -> [[text]]` defaults to seeded decoding (sampling.generate_replies)."""
    if isinstance(probes, ProbeSet):
        items, sampling = list(probes.probes), probes.sampling
    else:
        items, sampling = list(probes), SamplingConfig(temperature=0.7, top_p=0.9, max_new_tokens=96)
    if seed is not None:
        sampling = SamplingConfig(**{**sampling.as_dict(), "seed": seed, "num_samples": 1})
    generate = generate or generate_replies
    answers = [a[0] if a else "" for a in generate(model, tokenizer, [list(p.messages) for p in items], sampling)]
    shown = (scrub or scrub_texts)(answers)
    return [{"id": p.id, "category": p.category, "prompt": p.prompt, "answer": a} for p, a in zip(items, shown)]


def _cell(text: str | None, limit: int = 400) -> str:
    if text is None:
        return "—"
    text = " ".join(str(text).split())
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;") or "(empty)"


def probe_table(current: Sequence[Mapping[str, Any]], previous: Sequence[Mapping[str, Any]] | None = None, *,
                stage: str = "this stage", previous_stage: str = "previous stage") -> str:
    """Markdown: prompt | this stage | previous stage (matched by probe id)."""
    before = {a["id"]: a.get("answer") for a in previous or []}
    lines = [f"| prompt | {_cell(stage)} | {_cell(previous_stage)} |", "|---|---|---|"]
    for a in current:
        lines.append(f"| {_cell(a['prompt'], 200)} | {_cell(a['answer'])} | {_cell(before.get(a['id']))} |")
    return "\n".join(lines)


def answers_json(answers: Sequence[Mapping[str, Any]]) -> str:
    """Stable JSON of scrubbed answers (what the next stage's table reads as `previous`)."""
    return json.dumps(list(answers), ensure_ascii=False, indent=2, sort_keys=True)
